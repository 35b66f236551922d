import { redirect } from 'next/navigation';
import { currentDemoUser } from '@/lib/demo-login';
import { SignalRChat } from '../../_components/signalr-chat';

export default async function ChatPage({ params }: { params: Promise<{ sessionId: string }> }) {
  if (!(await currentDemoUser())) {
    redirect('/login');
  }

  const { sessionId } = await params;
  return <SignalRChat sessionId={sessionId} />;
}
