// The relay's job log: <data>/jobs/<jobId>.jsonl, append-only, fsync'd before anything is acknowledged.
// This module only reads and writes; what the records mean is state.ts.
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { FailureType } from '../protocol/failure-types.ts';
import type { DistributionCommand, Plan, TargetState } from '../protocol/types.ts';

export type JobLogRecord =
  | { type: 'command'; at: string; command: DistributionCommand }
  | { type: 'fetch'; at: string; event: 'started' | 'verified'; digest: string; bytes: number; from?: number }
  | {
      type: 'target';
      at: string;
      deviceId: string;
      state: TargetState;
      attempt: number;
      commandId: string;
      failureType?: FailureType;
      error?: string;
      /** What the endpoint attested with `installed`. */
      trees?: Record<string, string>;
    }
  | { type: 'failed'; at: string; commandId: string; failureType: FailureType; message: string }
  | { type: 'plan'; at: string; plan: Plan }
  | { type: 'redistribution'; at: string; command: DistributionCommand; planId: string; approvedBy: string }
  | { type: 'complete'; at: string; commandId: string };

const JOB_ID = /^[A-Za-z0-9._-]+$/;

export class JobLog {
  readonly dir: string;
  constructor(
    dataDir: string,
    private readonly faults?: { throwIf(point: string): void },
    /** The write call; a test hands in one that stops halfway, as a filling disk does. */
    private readonly write: typeof writeSync = writeSync,
  ) {
    this.dir = join(dataDir, 'jobs');
    mkdirSync(this.dir, { recursive: true });
  }

  path(jobId: string) {
    if (!JOB_ID.test(jobId)) throw new Error(`"${jobId}" is not a job id`);
    return join(this.dir, `${jobId}.jsonl`);
  }

  exists(jobId: string) {
    return existsSync(this.path(jobId));
  }

  /**
   * Appends whole records and fsyncs: when this returns they survive a crash. A write the disk
   * takes only in part is cut back off, so the log never holds half a record, and the error is thrown.
   */
  append(jobId: string, records: JobLogRecord[], syncLater = false) {
    if (!records.length) return;
    this.faults?.throwIf('relay.joblog.write');
    const bytes = Buffer.from(`${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const fd = openSync(this.path(jobId), 'a+');
    const before = this.wholeLines(fd, jobId);
    try {
      let done = 0;
      while (done < bytes.length) done += this.write(fd, bytes, done, bytes.length - done);
      if (syncLater) this.unsynced.add(this.path(jobId));
      else fsyncSync(fd);
    } catch (e) {
      try {
        ftruncateSync(fd, before);
      } catch {
        /* the record stays torn; read() skips a torn last line */
      }
      throw e;
    } finally {
      closeSync(fd);
    }
  }

  /** Logs whose end was checked by this process: every later write ends with a newline. */
  private readonly checked = new Set<string>();

  /**
   * The log's size once a torn last line (a power cut mid-write, never acknowledged) is cut off:
   * a record appended after it would join its line and be lost to every later read.
   */
  private wholeLines(fd: number, jobId: string) {
    const size = fstatSync(fd).size;
    if (this.checked.has(jobId)) return size;
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const from = Math.max(0, end - chunk.length);
      readSync(fd, chunk, 0, end - from, from);
      const nl = chunk.subarray(0, end - from).lastIndexOf(10);
      if (nl >= 0) {
        end = from + nl + 1;
        break;
      }
      end = from;
    }
    if (end < size) ftruncateSync(fd, end);
    this.checked.add(jobId);
    return end;
  }

  private unsynced = new Set<string>();
  private waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  /**
   * Resolves once every record appended with `syncLater` is on disk. The fsyncs are shared: all the
   * reports that arrived in one turn of the event loop wait for one fsync per job log, not one each.
   */
  synced(): Promise<void> {
    if (!this.unsynced.size && !this.waiting.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (!this.waiting.length) setImmediate(() => this.syncAll());
      this.waiting.push({ resolve, reject });
    });
  }

  private syncAll() {
    const paths = [...this.unsynced];
    const waiting = this.waiting;
    this.unsynced.clear();
    this.waiting = [];
    try {
      for (const p of paths) {
        const fd = openSync(p, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      for (const w of waiting) w.resolve();
    } catch (e) {
      for (const w of waiting) w.reject(e);
    }
  }

  read(jobId: string): JobLogRecord[] {
    const text = readFileSync(this.path(jobId), 'utf8');
    const out: JobLogRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // A torn last line (a crash mid-write, before fsync returned) was never acknowledged: skip it.
      }
    }
    return out;
  }

  /** Bytes in the job's log: what a summary file is checked against. */
  size(jobId: string) {
    return statSync(this.path(jobId)).size;
  }

  jobIds(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => f.slice(0, -6))
      .sort();
  }
}
