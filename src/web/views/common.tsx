export const State = ({ s }: { s: string | null | undefined }) => (
  <span className={`state state-${s ?? 'none'}`}>{s ?? '-'}</span>
);

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const UNSEEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Text a device sent (an alert's message, an install error, a job id it named): a control or bidi
 * override is shown as `\uXXXX`, so what the reader sees is what was sent; and isolated (<bdi>), so
 * it cannot reorder what the dashboard writes after it.
 */
export const DeviceText = ({ text, className }: { text: string | null | undefined; className?: string }) =>
  text == null ? null : (
    <bdi className={className}>
      {text.replace(UNSEEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}
    </bdi>
  );

export const time = (t: string | null | undefined) => (t ? new Date(t).toLocaleString() : '-');

export function Table<T>({
  rows,
  cols,
  empty,
  rowKey,
}: {
  rows: T[];
  cols: [string, (r: T) => React.ReactNode][];
  empty: string;
  rowKey: (r: T) => string;
}) {
  if (!rows.length) return <p className="empty">{empty}</p>;
  return (
    <table>
      <thead>
        <tr>
          {cols.map(([h]) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)}>
            {cols.map(([h, f]) => (
              <td key={h}>{f(r)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Previous / Next over a paged list: `what` names the items (e.g. "targets "), `empty` says there are none. */
export function Pager({
  offset,
  page,
  total,
  what = '',
  empty,
  onOffset,
}: {
  offset: number;
  page: number;
  total: number;
  what?: string;
  empty?: string;
  onOffset: (offset: number) => void;
}) {
  return (
    <div className="pager">
      <button type="button" disabled={offset === 0} onClick={() => onOffset(Math.max(0, offset - page))}>
        Previous
      </button>
      <span>{total || !empty ? `${what}${offset + 1}–${Math.min(offset + page, total)} of ${total}` : empty}</span>
      <button type="button" disabled={offset + page >= total} onClick={() => onOffset(offset + page)}>
        Next
      </button>
    </div>
  );
}
