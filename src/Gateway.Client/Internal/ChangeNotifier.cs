using System.ComponentModel;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Client.Internal;

/// <summary>
/// Raises a view's <c>Changed</c> and <c>PropertyChanged</c>: posted to a synchronization context (one pending post at a
/// time; the handlers read the latest state), or on the caller's thread, one raiser at a time (a change during a raise
/// is raised again after it).
/// </summary>
internal sealed class ChangeNotifier(object sender, string property, SynchronizationContext? context, ILogger logger)
{
    private readonly PropertyChangedEventArgs _propertyChanged = new(property);
    private int _raising;
    private int _dirty;
    private int _posted;

    public event EventHandler? Changed;

    public event PropertyChangedEventHandler? PropertyChanged;

    public void Notify()
    {
        if (context is not null)
        {
            if (Interlocked.Exchange(ref _posted, 1) == 0)
            {
                context.Post(_ =>
                {
                    Volatile.Write(ref _posted, 0);
                    Raise();
                }, null);
            }

            return;
        }

        Volatile.Write(ref _dirty, 1);
        while (Interlocked.CompareExchange(ref _raising, 1, 0) == 0)
        {
            try
            {
                if (Interlocked.Exchange(ref _dirty, 0) == 1)
                {
                    Raise();
                }
            }
            finally
            {
                Volatile.Write(ref _raising, 0);
            }

            if (Volatile.Read(ref _dirty) == 0)
            {
                break;
            }
        }
    }

    private void Raise()
    {
        try
        {
            Changed?.Invoke(sender, EventArgs.Empty);
            PropertyChanged?.Invoke(sender, _propertyChanged);
        }
        catch (Exception e)
        {
            ClientLog.HandlerFailed(logger, nameof(Changed), e);
        }
    }
}
