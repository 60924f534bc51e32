import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN, ROOT, runSmart, smart } from '../helpers/cli.js';

const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

describe('smart (the CLI frame)', () => {
  it('--version prints the package version alone', async () => {
    const r = await smart(['--version']);
    expect(r).toEqual({ stdout: `${VERSION}\n`, stderr: '', exitCode: 0 });
    expect((await smart(['-V'])).stdout).toBe(`${VERSION}\n`);
  });

  // Pinned: scripts and docs depend on it. After adding a command: `npx vitest run test/e2e/cli.test.ts -u`.
  it('--help lists every command and the global options', async () => {
    const r = await smart(['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatchInlineSnapshot(`
      "Usage: smart [options] [command]

      SMART Backend Services from the terminal: keys, client registration, tokens, FHIR queries and bulk
      export.

      Options:
        -V, --version                            print the version
        --profile <name>                         use this profile from the config file (env SMART_PROFILE)
        -o, --output <format>                    output format (default: table on a TTY, json when piped)
                                                 (choices: "table", "json", "ndjson", "csv")
        --json                                   shortcut for --output json
        --base-url <url>                         server origin, e.g. https://aidbox.example.com (env
                                                 SMART_BASE_URL)
        --fhir-url <url>                         FHIR base URL (default <base-url>/fhir; env
                                                 SMART_FHIR_URL)
        --token-url <url>                        token endpoint (default: discovered; env SMART_TOKEN_URL)
        --server-url <origin>                    the server's own name for itself, when it differs from
                                                 --base-url (env SMART_SERVER_URL)
        --client-id <id>                         client id (env SMART_CLIENT_ID)
        --key <file>                             private key file (env SMART_KEY)
        --scope <scopes>                         space-separated scopes (default system/*.read; env
                                                 SMART_SCOPE)
        --alg <alg>                              signing algorithm (default: from the key; env SMART_ALG)
        --ca-file <file>                         trust this PEM CA bundle for TLS, in addition to the
                                                 system CAs (env SMART_CA_FILE)
        --insecure                               allow tokens and secrets over plain http to a
                                                 non-loopback host (env SMART_INSECURE=1)
        --timeout <seconds>                      HTTP timeout per request (default 30; env SMART_TIMEOUT)
        --max-response <MiB>                     largest response read into memory, in MiB (default 256;
                                                 env SMART_MAX_RESPONSE)
        --verbose                                log one line per HTTP request on stderr (secrets
                                                 redacted)
        --debug                                  show stack traces and error causes
        --no-color                               disable colours (also NO_COLOR=1)
        --no-input                               never prompt; a missing value is an error
        -h, --help                               show help for a command

      Commands:
        demo [options]                           Run the whole flow on this machine: sandbox, keygen,
                                                 JWKS, register-client, token, query
        init                                     Create or update a profile: a wizard on a terminal, or
                                                 from flags
        config                                   Read and write settings in the config file (profiles)
        keygen [options]                         Create a signing key pair: private key (PEM, 0600) and
                                                 its public JWKS
        jwks                                     Show, edit and serve the public JWK Set (jwks.json)
        register-client [options] <client-id>    Register a backend-services client: Aidbox admin API
                                                 (default), RFC 7591, or SMART reference servers
        unregister-client [options] <client-id>  Delete a registered client: Aidbox Client and
                                                 AccessPolicy, or an RFC 7592 registration
        discover [fhir-base-url]                 Read a server's SMART configuration and check it can do
                                                 Backend Services (exit 1 when it cannot)
        token [options]                          Get an access token (client_credentials + signed
                                                 assertion) and print it alone on stdout; cached until 60
                                                 s before expiry
        assertion [options]                      Print a signed SMART client assertion (a JWT) for use
                                                 with curl or Postman
        decode [options] <jwt>                   Decode a JWT (access token or client assertion): header,
                                                 claims, times, SMART assertion checks
        query [options] <target> [params...]     Search or read FHIR resources, e.g. smart query
                                                 Observation code=4548-4
        api [options] <path>                     Make an authenticated request to the FHIR API and print
                                                 the response body
        export [options]                         Bulk Data $export: kick off, wait, and download every
                                                 NDJSON file (resumable)
        completion <shell>                       Print a shell completion script for bash, zsh or fish
        sandbox [options]                        Run a local SMART backend-services + FHIR R4 server
                                                 (Aidbox-like, in memory) to try everything offline
        help [command]                           show help for a command

      Examples:
        $ smart demo                                  # the whole flow against a local sandbox
        $ smart keygen --alg RS384
        $ smart register-client my-client --jwks-uri https://example.org/jwks.json
        $ smart token
        $ smart query Observation code=4548-4 _count=2
        $ smart export --type Patient,Observation --out ./export

      Exit codes: 0 ok, 1 runtime or server failure, 2 usage or input error,
      3 authentication or authorization failure, 4 network failure or timeout,
      70 a bug in smart (please report it), 130 interrupted (Ctrl-C), 143 stopped (SIGTERM).
      Docs: README.md
      "
    `);
  });

  it('help <command> shows its options and examples', async () => {
    const r = await runSmart(['help', 'keygen']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Usage: smart keygen [options]');
    expect(r.stdout).toContain('--alg <alg>');
    expect(r.stdout).toContain('--bits <n>');
    expect(r.stdout).toContain('--no-save');
    expect(r.stdout).toContain('Examples:\n  $ smart keygen');
    expect((await runSmart(['keygen', '--help'])).stdout).toBe(r.stdout);
  });

  it('help <group> <subcommand> shows the subcommand, as <group> <subcommand> --help does', async () => {
    const r = await runSmart(['help', 'jwks', 'serve']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Usage: smart jwks serve [options] [file]');
    expect(r.stdout).toBe((await runSmart(['jwks', 'serve', '--help'])).stdout);
    expect((await runSmart(['--no-color', 'help', 'config', 'set'])).stdout).toContain(
      'Usage: smart config set',
    );
  });

  it('every command and subcommand has a description and an example', async () => {
    const top = await runSmart(['--help']);
    const names = [...top.stdout.matchAll(/^ {2}([a-z][a-z-]+)\b.*$/gm)]
      .map((m) => m[1]!)
      .filter((n) => n !== 'help');
    expect(names).toEqual(expect.arrayContaining(['init', 'config', 'keygen', 'jwks']));
    const subs = [
      'config set',
      'config get',
      'config list',
      'config unset',
      'config use',
      'config profiles',
      'config delete',
      'config rename',
      'jwks show',
      'jwks add',
      'jwks remove',
      'jwks serve',
    ];
    for (const cmd of [...names, ...subs]) {
      const r = await runSmart([...cmd.split(' '), '--help']);
      expect(r.exitCode, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/\nExamples:\n {2}\$ .*\bsmart /);
    }
  });

  it('an unknown command is one error line with a did-you-mean, exit 2', async () => {
    // As a process: the exit status the shell sees.
    const r = await smart(['kegen']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe("error: unknown command 'kegen' (did you mean keygen?)");
  });

  it('an unknown flag is one error line naming it, exit 2', async () => {
    const r = await runSmart(['keygen', '--forse']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe("error: unknown option '--forse' (did you mean --force?)");
    const g = await runSmart(['--bogus']);
    expect(g.exitCode).toBe(2);
    expect(g.stderr.split('\n')[0]).toBe("error: unknown option '--bogus'");
  });

  it('a value that starts with "-" (a server-assigned id) is not a flag: the hint says to put `--` before it, which works', async () => {
    const id = '-ys2nIAjTXaR0gHJuREbWbJCU-fIQE4v--nR3msE8Ci';
    const r = await runSmart(['decode', id]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      `error: unknown option '${id}'\n` +
        'hint: if -ys2nIAj…8Ci is a value (an id or a search value that starts with "-"), put `--` before it: `smart <command> [options] -- -ys2nIAj…8Ci`\n',
    );
    // A flag of ours mistyped keeps the usage hint.
    expect((await runSmart(['keygen', '--forse'])).stderr).toContain('hint: run `smart --help`');
    // After `--` it is the command's argument: decode says it is not a JWT, not "unknown option".
    const v = await runSmart(['decode', '--', id]);
    expect(v.exitCode).toBe(2);
    expect(v.stderr).not.toContain('unknown option');
  });

  it('a bad --output choice is a usage error', async () => {
    const r = await runSmart(['-o', 'xml', 'config', 'list']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('xml');
  });

  it('a closed pipe on stdout is not an error (smart --help | head -1)', async () => {
    const r = await execa('sh', ['-c', `"${process.execPath}" "${BIN}" --help | head -1`], {
      env: { PATH: process.env.PATH, NO_COLOR: '1' },
      extendEnv: false,
      reject: false,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('Usage: smart [options] [command]');
    expect(r.stderr).toBe('');
  });

  it('a group command without its subcommand shows its help on stderr, exit 2', async () => {
    const r = await runSmart(['jwks']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: smart jwks');
  });
});
