// The demo login: a form posts a user name (and optional workspaces); the answer sets the signed login cookie.
import type { NextRequest } from 'next/server';
import { demoLoginCookie, parseDemoLogin, sealDemoUser, seeOther } from '@/lib/demo-login';

export async function POST(request: NextRequest) {
  const form = await request.formData();
  const user = parseDemoLogin(form.get('name'), form.get('workspaces'));
  if (typeof user === 'string') {
    return seeOther(`/login?error=${encodeURIComponent(user)}`);
  }

  const response = seeOther('/');
  response.cookies.set(demoLoginCookie, sealDemoUser(user), { httpOnly: true, sameSite: 'lax', path: '/' });
  return response;
}
