import { useState } from 'react';

export function SignIn({ error, onToken }: { error: string | null; onToken: (t: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <form className="signin" onSubmit={(e) => (e.preventDefault(), value.trim() && onToken(value.trim()))}>
      <h1>Fanout</h1>
      <p>
        Sign in with the master's admin token (the master writes it to <code>DATA/admin.token</code>).
      </p>
      <label htmlFor="token">Token</label>
      <input
        id="token"
        type="password"
        autoComplete="off"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        autoFocus
      />
      <button type="submit">Sign in</button>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
    </form>
  );
}
