/// A way for the caller of a session to say "stop now": a descriptor whose peer
/// hanging up means nobody waits for the answer any more.
///
/// The responder passes the FastCGI connection of the request that asked for a test
/// email: when the browser cancels or nginx gives up (`fastcgi_read_timeout`), nginx
/// closes that connection, and every wait of the session (resolve, connect, each
/// reply, the TLS handshake) ends at once with ``SessionAbandoned`` instead of
/// running to its own timeout. Only a hang-up counts (`POLLRDHUP`/`POLLHUP`), never
/// readable data, so bytes the caller has not read yet do not end the session.
///
/// ```swift
/// var settings = SmtpSettings(host: "smtp.example.com", port: 587, security: .startTLSRequired)
/// settings.abort = SessionAbort(descriptor: fastCGIConnectionFD)
/// ```
public struct SessionAbort: Sendable, Equatable {
    /// The descriptor watched for a hang-up. It is never read, written or closed here.
    public let descriptor: Int32

    /// Watches `descriptor` (a connected socket the caller owns and keeps open for the
    /// whole session).
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// True once the caller has gone away (checked without waiting), for work outside
    /// the SMTP session that wants to stop too (an HTTPS token request).
    public var hasHungUp: Bool { Smtp.hasHungUp(self) }
}

/// The underlying error of an ``SmtpError`` for a session that stopped because its
/// ``SessionAbort`` hung up: nobody reads the answer, but the caller's audit does.
public struct SessionAbandoned: Error, Sendable, CustomStringConvertible {
    /// Makes the marker.
    public init() {}
    public var description: String { "the session was abandoned: the client went away" }
}

extension SmtpError {
    /// True when the session stopped because the caller went away (see ``SessionAbort``).
    public var wasAbandoned: Bool { underlying is SessionAbandoned }
}
