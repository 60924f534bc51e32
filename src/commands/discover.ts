import type { Command } from 'commander';
import type { Context } from '../context.js';
import { SmartError, usageError } from '../core/errors.js';

function list(v: unknown): string {
  if (!Array.isArray(v)) return '(not advertised)';
  return v.length ? v.join(', ') : '(none)';
}

export function registerDiscover(program: Command, ctx: Context): void {
  program
    .command('discover [fhir-base-url]')
    .description(
      "Read a server's SMART configuration and check it can do Backend Services (exit 1 when it cannot)",
    )
    .addHelpText(
      'after',
      `
Tries {fhir}/.well-known/smart-configuration, then the origin's, and reads {fhir}/metadata.
Required: a token endpoint, and private_key_jwt or the client-confidential-asymmetric
capability. Advisory (assumed with a warning when absent, a failure when they exclude what is
needed): grant_types_supported, the signing algs, scopes_supported. Each check is ok, assumed
or missing. The token endpoint is cached per FHIR base.
-o json prints {source, tried, config, metadata, checks: [{requirement, status, ok, detail}]}.

Examples:
  $ smart discover
  $ smart discover https://aidbox.example.com/fhir
  $ smart discover http://localhost:8080/fhir -o json
`,
    )
    .action(async (arg: string | undefined) => {
      const { outputFor } = await import('./shared.js');
      const output = await outputFor(ctx, 'discover', 'discover');
      const [
        { discoverSmartConfiguration, saveDiscovery, backendServicesChecks },
        { requireSetting },
        settings,
      ] = await Promise.all([
        import('../core/discovery.js'),
        import('../core/settings.js'),
        ctx.settings(),
      ]);
      let fhirUrl: string;
      if (arg) {
        try {
          const u = new URL(arg);
          if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
        } catch {
          throw usageError(
            `"${arg}" is not an absolute http(s) URL`,
            'e.g. smart discover https://aidbox.example.com/fhir',
          );
        }
        fhirUrl = arg.replace(/\/+$/, '');
      } else {
        fhirUrl = requireSetting(settings, 'fhirUrl', 'to discover its SMART configuration');
      }
      const http = await ctx.http();
      const result = await discoverSmartConfiguration(http, fhirUrl, { withMetadata: true });
      await saveDiscovery(settings.paths.cacheDir, fhirUrl, result, ctx.now());

      let keyAlg: string | undefined;
      if (settings.key) {
        const { loadSigningKey } = await import('../core/auth/keys.js');
        keyAlg = await loadSigningKey(settings.key, { alg: settings.alg })
          .then((k) => k.alg)
          .catch(() => undefined);
      }
      const checks = backendServicesChecks(result.config, { keyAlg });
      const { serverAlias, reachable, unreachableOwnName, mayBeOwnName } =
        await import('../core/server-url.js');
      // The server's own name (serverUrl): its endpoints are reached at the URL given here.
      const alias = serverAlias({ serverUrl: settings.serverUrl, baseUrl: fhirUrl });
      const advertised = result.config.token_endpoint;
      const tokenAt = reachable(advertised, alias);
      if (mayBeOwnName(tokenAt, fhirUrl)) {
        // Another origin is fine (a separate auth server) unless its name does not resolve here:
        // then it is the server's own name for itself (Aidbox in Docker).
        try {
          await http.request(tokenAt, { retry: false, timeoutMs: 10_000, sizeCap: 'small' });
        } catch (e) {
          // Only a probe: any other failure is for `smart token` to report.
          const advice = unreachableOwnName(e, tokenAt, fhirUrl);
          if (advice)
            checks.push({
              requirement: 'server name',
              status: 'missing',
              ok: false,
              detail: advice.hint ?? advice.message,
            });
        }
      }
      const metadata = result.capabilityStatement
        ? {
            fhirVersion: result.capabilityStatement.fhirVersion,
            software: result.capabilityStatement.software,
          }
        : undefined;

      const c = result.config;
      await output.show({
        kind: 'discover',
        fields: [
          ['source', result.source],
          ['token endpoint', tokenAt],
          ...(alias
            ? ([
                [
                  'server name',
                  `${alias.own} (its own URLs are reached at ${alias.reached}; aud ${advertised})`,
                ],
              ] as Array<[string, unknown]>)
            : []),
          ['auth methods', list(c.token_endpoint_auth_methods_supported)],
          ['signing algs', list(c.token_endpoint_auth_signing_alg_values_supported)],
          ['grant types', list(c.grant_types_supported)],
          [
            'scopes',
            Array.isArray(c.scopes_supported) && c.scopes_supported.length > 12
              ? `${c.scopes_supported.slice(0, 12).join(', ')}, … (${c.scopes_supported.length} in all)`
              : list(c.scopes_supported),
          ],
          ['capabilities', list(c.capabilities)],
          [
            'FHIR version',
            metadata?.fhirVersion
              ? `${metadata.fhirVersion}${metadata.software ? ` (${metadata.software})` : ''}`
              : '(no CapabilityStatement)',
          ],
        ],
        checks,
        document: {
          source: result.source,
          tried: result.tried,
          config: result.config,
          ...(alias ? { serverUrl: alias.own, tokenUrl: tokenAt } : {}),
          metadata,
          checks,
        },
      });
      ctx.log.verbose(`saved the token endpoint of ${fhirUrl} in the discovery cache`);
      for (const c of checks) if (c.warning) ctx.log.warn(c.warning);

      const missing = checks.filter((c) => c.status === 'missing');
      if (missing.length) {
        const algOnly = missing.length === 1 && missing[0]!.requirement === 'signing algorithm';
        const ownName = missing.find((m) => m.requirement === 'server name');
        throw new SmartError(
          'runtime',
          `${fhirUrl} cannot do SMART Backend Services as advertised: missing ${missing.map((m) => m.requirement).join(', ')}`,
          {
            code: 'not_backend_services',
            hint: ownName
              ? ownName.detail
              : algOnly
                ? missing[0]!.detail
                : 'what the server advertises excludes what Backend Services needs (see the lines above); if you know it does, try `smart token` anyway',
          },
        );
      }
    });
}
