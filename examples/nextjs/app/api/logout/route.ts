import { demoLoginCookie, seeOther } from '@/lib/demo-login';

export async function POST() {
  const response = seeOther('/login');
  response.cookies.delete(demoLoginCookie);
  return response;
}
