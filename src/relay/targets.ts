// One target's life on a relay: pending → downloading → installing → installed, or failed, and a
// failed attempt offered again while attempts remain. Agents may only move their own target forward.
import type { TargetState } from '../protocol/types.ts';
import type { TargetStatus } from './state.ts';

const ORDER: Record<TargetState, number> = {
  pending: 0,
  downloading: 1,
  waiting_window: 2,
  installing: 3,
  installed: 4,
  failed: 4,
};
export const ended = (s: TargetState) => s === 'installed' || s === 'failed';

export type AgentStep =
  | { kind: 'ignore'; why: string }
  | { kind: 'move'; state: TargetState }
  | { kind: 'fail'; retry: boolean };

/** What an agent's report does to its target. */
export function agentStep(t: TargetStatus, reported: TargetState, maxAttempts: number): AgentStep {
  // The endpoint's disk is the truth: an install that finished after the relay gave up on it counts.
  if (t.state === 'failed' && reported === 'installed') return { kind: 'move', state: 'installed' };
  if (ended(t.state)) return { kind: 'ignore', why: `the target has already ended as ${t.state}` };
  if (reported === 'failed') return { kind: 'fail', retry: t.attempt < maxAttempts };
  if (reported === t.state) return { kind: 'ignore', why: 'no change' };
  if (ORDER[reported] < ORDER[t.state]) return { kind: 'ignore', why: `${reported} would go back from ${t.state}` };
  return { kind: 'move', state: reported };
}

/** A target the relay offers (again): a new attempt unless this one was never offered. */
export function offer(t: TargetStatus): { attempt: number } | undefined {
  if (t.state === 'installed') return undefined;
  if (t.state === 'pending') return t.attempt === 0 ? { attempt: 1 } : undefined;
  if (t.state === 'failed') return { attempt: t.attempt + 1 };
  return undefined;
}
