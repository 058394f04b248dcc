import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node } from 'constructs';

/** The repository's root: the Docker build context and where cargo puts the relay's zip. */
export const REPO_ROOT = path.join(__dirname, '..', '..');

/** How the relay's Lambda asset is made; synth never compiles Rust. */
export const RELAY_BUILD_COMMAND =
  'cargo lambda build --release --arm64 -p agent-host-relay --output-format zip';

export const DEFAULT_RELAY_ASSET = path.join(
  REPO_ROOT,
  'target',
  'lambda',
  'agent-host-relay',
  'bootstrap.zip',
);

/** AgentCore's limits (both in seconds) and its runtime name rule. */
const MIN_IDLE_SECS = 60;
const MAX_LIFETIME_SECS = 28800;
const RUNTIME_NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,47}$/;
const USER_IDS = /^\d+(,\d+)*$/;
const MODEL_ID = /^[a-z0-9][a-z0-9.:_-]{0,2047}$/i;

/** Everything an operator sets with `-c key=value`, validated. */
export interface AgentHostConfig {
  readonly runtimeName: string;
  /** Comma-separated Telegram user ids, the same for the host and the relay. */
  readonly allowedUsers: string;
  readonly modelId: string;
  readonly idleTimeoutSecs: number;
  readonly maxLifetimeSecs: number;
  /** Absolute path of the prebuilt relay: a zip, or a directory holding `bootstrap`. */
  readonly relayAsset: string;
}

/** A context parameter with a value that cannot be deployed. */
export class ContextError extends Error {
  constructor(key: string, problem: string) {
    super(`context parameter "${key}" ${problem}`);
    this.name = 'ContextError';
  }
}

/** Reads and checks the context parameters, so a bad value stops synth with its name. */
export function readConfig(node: Node): AgentHostConfig {
  const get = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    return value === undefined || value === null ? undefined : String(value).trim();
  };
  const idleTimeoutSecs = readSeconds('idleTimeoutSecs', get('idleTimeoutSecs'), 900, MIN_IDLE_SECS);
  return {
    runtimeName: readMatching('runtimeName', get('runtimeName') ?? 'agent_host', RUNTIME_NAME,
      'must start with a letter and hold only letters, digits and underscores (at most 48; no hyphens)'),
    allowedUsers: readAllowedUsers(get('allowedUsers')),
    modelId: readMatching('modelId', get('modelId') ?? 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      MODEL_ID, 'must be a Bedrock model or inference profile id, e.g. us.anthropic.claude-sonnet-4-5-20250929-v1:0'),
    idleTimeoutSecs,
    maxLifetimeSecs: readSeconds('maxLifetimeSecs', get('maxLifetimeSecs'), MAX_LIFETIME_SECS, idleTimeoutSecs,
      ' (idleTimeoutSecs)'),
    relayAsset: readRelayAsset(get('relayAsset')),
  };
}

function readMatching(key: string, value: string, pattern: RegExp, rule: string): string {
  if (!pattern.test(value)) {
    throw new ContextError(key, `is ${JSON.stringify(value)}: it ${rule}`);
  }
  return value;
}

/** Required: an empty list would deploy a bot that answers nobody. */
function readAllowedUsers(value: string | undefined): string {
  if (value === undefined || value === '') {
    throw new ContextError('allowedUsers', 'is required: the Telegram user ids allowed to use the bot, e.g. -c allowedUsers=123456789,987654321');
  }
  return readMatching('allowedUsers', value, USER_IDS, 'must be Telegram user ids separated by commas (digits and commas only)');
}

/** Whole seconds from `min` to AgentCore's 8 hours. */
function readSeconds(key: string, value: string | undefined, fallback: number, min: number, minNote = ''): number {
  if (value === undefined) {
    return fallback;
  }
  const seconds = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(seconds >= min && seconds <= MAX_LIFETIME_SECS)) {
    throw new ContextError(key, `is ${JSON.stringify(value)}: give whole seconds from ${min}${minNote} to ${MAX_LIFETIME_SECS}`);
  }
  return seconds;
}

/** The relay is built beforehand by cargo; a missing build says how to make it. */
function readRelayAsset(value: string | undefined): string {
  const asset = path.resolve(value || DEFAULT_RELAY_ASSET);
  if (!fs.existsSync(asset)) {
    throw new ContextError('relayAsset', `names ${asset}, which does not exist: build the relay first, from the repository's root: ${RELAY_BUILD_COMMAND}`);
  }
  return asset;
}
