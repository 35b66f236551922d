import { redirect } from 'next/navigation';
import { currentDemoUser } from '@/lib/demo-login';
import { AiSdkChat } from '../../_components/ai-sdk-chat';

export default async function AiChatPage({ params }: { params: Promise<{ chatId: string }> }) {
  if (!(await currentDemoUser())) {
    redirect('/login');
  }

  const { chatId } = await params;
  return <AiSdkChat chatId={chatId} />;
}
