import { redirect } from 'next/navigation';
import { currentDemoUser } from '@/lib/demo-login';
import { SessionsList } from './_components/sessions-list';

export default async function Home() {
  if (!(await currentDemoUser())) {
    redirect('/login');
  }

  return <SessionsList />;
}
