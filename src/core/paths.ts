import { join } from 'node:path';

/** Where smart keeps its configuration, keys and caches. */
export interface Paths {
  configDir: string;
  configFile: string;
  cacheDir: string;
  keysDir: string;
}

type Env = Record<string, string | undefined>;

/** $XDG_CONFIG_HOME/smart and $XDG_CACHE_HOME/smart, else ~/.config/smart and ~/.cache/smart. */
export function resolvePaths(env: Env): Paths {
  // node:os only without $HOME (it costs start-up, and $HOME is nearly always set).
  const home = () => env.HOME || process.getBuiltinModule('node:os').homedir();
  const configDir = join(env.XDG_CONFIG_HOME || join(home(), '.config'), 'smart');
  const cacheDir = join(env.XDG_CACHE_HOME || join(home(), '.cache'), 'smart');
  return {
    configDir,
    configFile: join(configDir, 'config.json'),
    cacheDir,
    keysDir: join(configDir, 'keys'),
  };
}
