import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart } from '../../helpers/cli.js';

/**
 * Every flag of `smart export` that cannot be right, alone or with another: exit 2 before any
 * request or file (in-process through run(); no FHIR server is configured, so a run that got as
 * far as the network would fail otherwise).
 */
const ws = makeWorkspace();

async function refused(args: string[], error: string, hint: string | RegExp) {
  const r = await runSmart(['export', ...args], { ws });
  expect(r.exitCode, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const [first, second, ...rest] = r.stderr.split('\n');
  expect(first).toBe(`error: ${error}`);
  expect(second).toMatch(typeof hint === 'string' ? `hint: ${hint}` : hint);
  expect(rest.join('')).toBe('');
  // Nothing was created: no default export-<timestamp> directory, no cache of a token.
  expect(readdirSync(ws.home).filter((n) => n.startsWith('export-'))).toEqual([]);
}

describe('smart export: invalid flags and combinations (exit 2)', () => {
  it('--group and --patient together', async () => {
    await refused(
      ['--group', 'g1', '--patient'],
      '--group and --patient cannot be used together',
      /^hint: choose one export level: --group <id>/,
    );
  });

  it.each(['a/b', 'g 1', '', 'x'.repeat(65), '../Patient'])(
    '--group "%s" is not a FHIR id',
    async (id) => {
      await refused(
        ['--group', id],
        `--group "${id}" is not a FHIR id`,
        'ids are 1-64 letters, digits, "-" and "."',
      );
    },
  );

  it.each([
    ['patient', 'patient'],
    ['Patient,observation', 'observation'],
    [',', ','],
    ['Patient/1', 'Patient/1'],
  ])('--type %s', async (types, bad) => {
    await refused(
      ['--type', types],
      `--type: "${bad}" is not a resource type`,
      'give FHIR resource types separated by commas, e.g. --type Patient,Observation',
    );
  });

  it.each(['2024-06-01', 'yesterday', '2024-06-01T00:00:00', '2024-13-01T00:00:00Z'])(
    '--since %s',
    async (since) => {
      await refused(
        ['--since', since],
        `--since "${since}" is not a FHIR instant`,
        /^hint: give a date and time with seconds and a time zone/,
      );
    },
  );

  it.each(['code=4548-4', 'observation?code=1', 'Observation?', 'Observation'])(
    '--type-filter %s',
    async (filter) => {
      await refused(
        ['--type-filter', 'Patient?gender=female', '--type-filter', filter],
        `--type-filter "${filter}" is not a search query`,
        'give Type?params, e.g. --type-filter "Observation?code=4548-4"',
      );
    },
  );

  it('--output-format that smart cannot save', async () => {
    await refused(
      ['--output-format', 'text/csv'],
      '--output-format "text/csv" is not one smart can save: it writes NDJSON files',
      /^hint: use one of application\/fhir\+ndjson, /,
    );
  });

  it.each(['0', '65', '1.5', 'four', '-1', ''])('--parallel "%s"', async (n) => {
    await refused(
      ['--parallel', n],
      `--parallel "${n}" is not a whole number between 1 and 64`,
      'e.g. --parallel 4 (downloads at once)',
    );
  });

  it.each(['0', 'soon', '-5', String(31 * 24 * 3600 + 1)])('--wait "%s"', async (s) => {
    await refused(
      ['--wait', s],
      `--wait "${s}" is not a number between more than 0 and 2678400`,
      'e.g. --wait 7200 (seconds)',
    );
  });

  it('--resume with any flag that would change the export', async () => {
    const dir = `${ws.home}/saved`;
    await refused(
      [
        '--resume',
        dir,
        '--group',
        'g',
        '--patient',
        '--type',
        'Patient',
        '--since',
        '2024-06-01T00:00:00Z',
        '--type-filter',
        'Patient?x=1',
        '--post',
        '--output-format',
        'ndjson',
        '--out',
        'elsewhere',
      ],
      `--resume takes the export's parameters from ${dir}/export.json; --group, --patient, --type, --since, --type-filter, --post, --output-format, --out cannot be changed`,
      'drop those flags, or start a new export with a new --out',
    );
    await refused(
      ['--resume', dir, '--post'],
      `--resume takes the export's parameters from ${dir}/export.json; --post cannot be changed`,
      /^hint: drop those flags/,
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('a bad --parallel is named even with --resume (checked first)', async () => {
    await refused(
      ['--resume', 'x', '--parallel', '0'],
      '--parallel "0" is not a whole number between 1 and 64',
      /^hint: e\.g\. --parallel 4/,
    );
  });
});
