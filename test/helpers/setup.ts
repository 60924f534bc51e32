import { afterAll } from 'vitest';
import { removeTempDirs } from './tmp.js';

// Every temp dir a test made through tempDir() (workspaces, keys, export dirs) goes after its file.
afterAll(() => removeTempDirs());
