import { redirect } from 'next/navigation';
import { currentDemoUser } from '@/lib/demo-login';

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ error?: string }> }) {
  if (await currentDemoUser()) {
    redirect('/');
  }

  const { error } = await searchParams;
  return (
    <form action="/api/login" method="post" className="login">
      <h1>Demo login</h1>
      <p className="hint">
        Any name logs in: this stands in for your app&apos;s own login. The server then mints gateway tokens for that
        user with the gateway&apos;s signing key, which never reaches the browser.
      </p>
      <label>
        User name <input name="name" required pattern="[A-Za-z0-9_.@\-]{1,64}" autoFocus data-testid="login-name" />
      </label>
      <label>
        Workspaces (optional, comma-separated) <input name="workspaces" data-testid="login-workspaces" />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" data-testid="login-submit">Log in</button>
    </form>
  );
}
