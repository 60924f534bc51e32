import { describe, expect, it } from 'vitest';
import { makeWorkspace, runSmart, smart } from '../helpers/cli.js';

// Most e2e tests run smart in-process (runSmart) to save a process start each. This file holds
// the two runners to the same result for command lines that cover each path of the entry:
// the fast `smart token`, Commander, a usage error, a runtime error, stdin and the environment.
describe('runSmart (in-process) gives what the process gives', () => {
  it.each([
    [['token']],
    [['config', 'list', '-o', 'json']],
    [['keygen', '--forse']],
    [['jwks', 'show', 'missing.json']],
    [['decode', '-']],
    [['config', 'get', 'baseUrl']],
  ])('smart %j', async (args) => {
    const ws = makeWorkspace();
    const options = { ws, env: { SMART_BASE_URL: 'http://127.0.0.1:9' }, input: 'not a jwt\n' };
    const inProcess = await runSmart(args, options);
    const processed = await smart(args, options);
    expect(inProcess).toEqual(processed);
  });
});
