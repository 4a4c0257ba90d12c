/// Why a DNS question got no records: the kind for programs, the name and type
/// asked, and one line a person can act on.
///
/// ```swift
/// do {
///     let records = try resolver.query("example.org", .mx)
/// } catch {
///     if error.kind == .nxdomain { … }   // error.hint: "example.org does not exist in DNS …"
/// }
/// ```
public struct DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, in the terms of DNS.
    public enum Kind: String, Sendable {
        /// The name does not exist (NXDOMAIN).
        case nxdomain
        /// The name exists but has no record of the type asked (NOERROR, empty answer).
        case nodata
        /// No server answered within the deadline, or nothing listens at its address
        /// (connection refused): DNS is unreachable, not the name wrong.
        case timeout
        /// The server refused to answer (REFUSED): it does not serve this name or this client.
        case refused
        /// The server could not get an answer (SERVFAIL): the domain's servers are
        /// broken or unreachable from it, or DNSSEC validation failed.
        case servfail
        /// The answer could not be read (a malformed or truncated message).
        case malformed
        /// The name cannot be asked: empty, too long, a label over 63 octets, or
        /// characters DNS names do not carry.
        case badName
        /// Anything else: a bad server address or setting, out of memory, a
        /// server that does not implement the query.
        case other
    }

    /// What went wrong.
    public var kind: Kind
    /// The name asked about (its A-label form when it could be mapped), or the
    /// server address or setting at fault for `.other`.
    public var name: String
    /// The record type asked for.
    public var type: DNSRecordType
    /// One line a person can act on ("no DNS server answered at 127.0.0.1:5353 within 3 s").
    public var hint: String

    /// An error of `kind` for a question of `type` records of `name`.
    public init(kind: Kind, name: String, type: DNSRecordType, hint: String) {
        self.kind = kind
        self.name = name
        self.type = type
        self.hint = hint
    }

    /// `hint`.
    public var description: String { hint }
}
