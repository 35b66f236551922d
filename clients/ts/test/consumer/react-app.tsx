// A React app over the React entry, in JSX: type-checked against @types/react 19 (tsconfig.react.json) and 18
// (tsconfig.react18.json), so the .d.ts files fit both Reacts the package's peer range allows.
import { GatewayProvider, useSession, useSessions } from '@opencode-gateway/client/react';

function Chat({ sessionId }: { sessionId: string }) {
  const { status, messages, error, prompt } = useSession(sessionId);
  return (
    <div data-status={status}>
      {messages.map((m) => <p key={m.info.id}>{m.info.role}</p>)}
      {error && <p>{error.code}</p>}
      <button onClick={() => void prompt('hello')}>Send</button>
    </div>
  );
}

function Sessions() {
  const { sessions } = useSessions({ tag: 'support' });
  return <>{sessions.map((s) => <Chat key={s.sessionId} sessionId={s.sessionId} />)}</>;
}

export function App({ getToken }: { getToken: () => Promise<string> }) {
  return (
    <GatewayProvider options={{ url: '/hubs/session', accessTokenFactory: getToken, skipNegotiation: true }}>
      <Sessions />
    </GatewayProvider>
  );
}
