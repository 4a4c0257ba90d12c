// Threads without Foundation's `Thread`, which FoundationEssentials does not have
// (docs/DECISIONS.md, "CGI start-up"): the FastCGI workers, the SMTP pool, the
// resolver and probe threads.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a new thread runs, handed over through pthread_create's argument.
private final class ThreadStart {
    let body: @Sendable () -> Void
    init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }
}

/// Runs `body` on a new detached thread: what `Thread { … }.start()` did. (Unnamed:
/// glibc's pthread_setname_np is not visible to Swift without _GNU_SOURCE.)
///
/// - Parameter stackSize: bytes of stack; 1 MiB by default, as the responder's threads had.
///
/// ```swift
/// startThread { workerLoop() }
/// ```
public func startThread(stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
    let start = Unmanaged.passRetained(ThreadStart(body: body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    pthread_attr_setstacksize(&attributes, stackSize)
    #if canImport(Darwin)
    var thread: pthread_t?
    #else
    var thread = pthread_t()
    #endif
    let status = pthread_create(&thread, &attributes, { argument in
        let start = Unmanaged<ThreadStart>.fromOpaque(threadArgument(argument)).takeRetainedValue()
        start.body()
        return nil
    }, start)
    // Like Foundation's Thread, which cannot report a failure either: out of threads
    // is not something the responder can answer around.
    precondition(status == 0, "pthread_create failed (\(status))")
}

/// pthread_create's argument, optional on Linux and not on Darwin.
private func threadArgument(_ pointer: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer { pointer! }
