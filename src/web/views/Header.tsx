/** The bar on top: live or not, the relays up or down, who is signed in. */
export function Header({
  live,
  relays,
  me,
  onSignOut,
}: {
  live: boolean;
  relays: any[];
  me: { name: string; role: string } | null;
  onSignOut: () => void;
}) {
  return (
    <header>
      <h1>Fanout</h1>
      <span className={`live ${live ? 'on' : 'off'}`} title="live updates from the master">
        {live ? 'live' : 'reconnecting…'}
      </span>
      <span className="relays">
        {relays.map((r) => (
          <span key={r.id} className={`relay ${r.down_since ? 'down' : 'up'}`}>
            {r.id}
          </span>
        ))}
      </span>
      {me && (
        <span className="me">
          {me.name} ({me.role})
        </span>
      )}
      <button type="button" className="link" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}
