// Progress of long work: a bar on a terminal, plain lines (only when something changed) otherwise.
import cliProgress from 'cli-progress';
import { cellSafe } from './terminal.ts';

export class Progress {
  private bar?: cliProgress.SingleBar;
  private last = '';

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
    /** What the count counts. */
    private readonly unit = 'installed',
  ) {}

  update(done: number, total: number, said: string) {
    if (this.quiet) return;
    // A job's state and id come from a relay: shown, never obeyed (terminal.ts).
    const state = cellSafe(said);
    if (this.stream.isTTY) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          {
            format: `${cellSafe(this.label)} [{bar}] {value}/{total} ${this.unit} | {state}`,
            stream: this.stream,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, done, { state });
      }
      this.bar.setTotal(total);
      this.bar.update(done, { state });
      return;
    }
    const line = `${cellSafe(this.label)}: ${done}/${total} ${this.unit}, ${state}`;
    if (line !== this.last) this.stream.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
    this.last = line;
  }

  stop() {
    this.bar?.stop();
  }
}
