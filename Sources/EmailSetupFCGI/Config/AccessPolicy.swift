/// Who may use the API: the web server authenticates, we authorise.
struct AccessPolicy: Sendable {
    enum Mode: String, Sendable {
        /// REMOTE_USER must be set by the web server (auth_basic, auth_request, SSO…).
        case remoteUser = "remote_user"
        /// No authentication: local runs only; the responder warns at start.
        case none
    }
    var mode: Mode = .remoteUser
    /// When not empty, only these users are administrators.
    var admins: UserNames = []
}

/// A set of user names compared byte for byte (their UTF-8), not as Swift `String`s:
/// `String` equality is canonical equivalence, which would admit "\u{212A}ate"
/// (KELVIN SIGN) or an NFD "José" for the listed "Kate" and NFC "José". The web
/// server decides who a user is, including any normalisation of its own; we add none.
///
/// ```swift
/// let admins: UserNames = ["Kate"]
/// admins.contains("\u{212A}ate")   // false
/// ```
struct UserNames: Sendable, Equatable, ExpressibleByArrayLiteral {
    private var names: Set<[UInt8]>

    init(_ names: some Sequence<String>) { self.names = Set(names.map { Array($0.utf8) }) }
    init(arrayLiteral names: String...) { self.init(names) }

    var isEmpty: Bool { names.isEmpty }
    var count: Int { names.count }

    /// Whether `user` is in the set with exactly these bytes.
    func contains(_ user: String) -> Bool { names.contains(Array(user.utf8)) }
}
