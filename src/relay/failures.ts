// Relay-level failures as the master hears of them: the job's state, its targets, and an alert.
import type { FailureType } from '../protocol/failure-types.ts';
import type { DistributionCommand } from '../protocol/types.ts';
import type { JobSummary } from './job-summary.ts';
import type { Reporter } from './reporter.ts';

/** A failed job: the alert's id is stable per command, so a resend is not counted twice. */
export function reportRelayFailure(reporter: Reporter, relayId: string, st: JobSummary) {
  if (!st.failure) return;
  reporter.alert({
    source: relayId,
    alertId: `${st.jobId}/${st.commandId}/failed`,
    deviceId: relayId,
    failureType: st.failure.failureType,
    jobId: st.jobId,
    relayId,
    message: st.failure.message,
  });
}

/** A command that does not verify never reaches the job log: the master hears why, and an alert is raised. */
export function reportRefused(reporter: Reporter, relayId: string, cmd: DistributionCommand, why: string) {
  const failureType = refusal(why);
  reporter.job({ jobId: cmd.jobId, state: 'failed', failureType, error: why });
  for (const deviceId of cmd.distributionList)
    reporter.target({ jobId: cmd.jobId, deviceId, state: 'failed', attempt: 0, failureType, error: why });
  refusedAlert(reporter, relayId, cmd, failureType, `command refused: ${why}`);
}

/** A command the disk refused: not acknowledged, so the master sends it again; meanwhile an alert. */
export function reportNotWritten(
  reporter: Reporter,
  relayId: string,
  cmd: DistributionCommand,
  e: { failureType: FailureType; message: string },
) {
  reporter.alert({
    source: relayId,
    alertId: `${cmd.commandId}/not-written`,
    deviceId: relayId,
    failureType: e.failureType,
    jobId: cmd.jobId,
    relayId,
    message: `command ${cmd.commandId} could not be written to the job log: ${e.message}`,
  });
}

/** A cancel that does not verify changes nothing: the job goes on, and an alert says why. */
export function reportCancelRefused(reporter: Reporter, relayId: string, cmd: DistributionCommand, why: string) {
  refusedAlert(reporter, relayId, cmd, refusal(why), `cancel refused, the job goes on: ${why}`);
}

const refusal = (why: string): FailureType => (/expired/.test(why) ? 'EXPIRED' : 'SIGNATURE_INVALID');

function refusedAlert(
  reporter: Reporter,
  relayId: string,
  cmd: DistributionCommand,
  failureType: FailureType,
  message: string,
) {
  reporter.alert({
    source: relayId,
    alertId: `${cmd.jobId}/${cmd.commandId}/refused`,
    deviceId: relayId,
    failureType,
    jobId: cmd.jobId,
    relayId,
    message,
  });
}
