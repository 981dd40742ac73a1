export function App() { return <h1>Fanout</h1>; }
