import { loadSharedSettings, type SharedSettings } from '../services/settings.js';

let parsed: SharedSettings | undefined;

/**
 * The CLI's environment, parsed once per process with the schema every looptool process shares
 * (services/settings.ts): where the local state lives and where Temporal and PostgreSQL listen.
 */
export function cliSettings(): SharedSettings {
  parsed ??= loadSharedSettings();
  return parsed;
}
