export const State = ({ s }: { s: string | null | undefined }) => (
  <span className={`state state-${s ?? 'none'}`}>{s ?? '-'}</span>
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
