import Smtp

extension SettingsValidator {
    /// Input in the server field that holds more than a server: `host:port`,
    /// `[v6]:port`, `smtp://host[:port]`, `smtps://host[:port]` (SSL/TLS, port 465
    /// unless given), `https://host/…` (a web address: its host only). Returns the
    /// fix (the fields that repair it) and the error the field shows until it is
    /// applied; nil for anything else, including a bare IPv6 address (`2001:db8::1`
    /// is an address, not a host and a port) and a host that would still be invalid.
    func misplacedHost(_ typed: String) -> (SettingsFix, String)? {
        let host = SettingsKey.host.rawValue, port = SettingsKey.port.rawValue, type = SettingsKey.connectionType.rawValue
        let label = SettingsSchema.label(.host), portLabel = SettingsSchema.label(.port)
        let shown = typed.count > 80 ? String(typed.prefix(80)) + "…" : typed

        if let schemeEnd = typed.firstRange(of: "://") {
            let scheme = typed[..<schemeEnd.lowerBound].lowercased()
            var authority = Substring(typed[schemeEnd.upperBound...])
            if let end = authority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { authority = authority[..<end] }
            if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
            guard let (name, givenPort) = Self.splitHostPort(String(authority)), isUsableHost(name) else { return nil }
            let message = "\(label) must be the server’s name alone, not an address like “\(shown)”."
            switch scheme {
            case "smtp":
                var set = [(host, name)]
                if let givenPort { set.append((port, givenPort)) }
                return (SettingsFix(set: set, note: "Took the server\(givenPort == nil ? "" : " and the port") from “\(shown)”."), message)
            case "smtps":
                let p = givenPort ?? "465"
                return (SettingsFix(set: [(host, name), (port, p), (type, "SSL")],
                                    note: "Took the server from “\(shown)”: \(portLabel) \(p) with \(SettingsSchema.label(.connectionType)) SSL/TLS, as smtps:// means."),
                        message)
            case "http", "https":
                return (SettingsFix(set: [(host, name)], note: "Took the server name \(name) from the web address “\(shown)”; check that it is the SMTP server, which is often another name."),
                        "\(label) must be the SMTP server’s name, not a web address like “\(shown)”.")
            default:
                return nil
            }
        }
        guard typed.contains(":"), let (name, givenPort) = Self.splitHostPort(typed), let givenPort, isUsableHost(name) else { return nil }
        return (SettingsFix(set: [(host, name), (port, givenPort)], note: "Split “\(shown)” into server and port."),
                "\(label) “\(shown)” holds a port too; enter the server here and the port under \(portLabel).")
    }

    /// Whether `name` is a host the validator would accept (so the fix repairs the field).
    private func isUsableHost(_ name: String) -> Bool {
        if case .success = canonicalHost(name) { return true }
        return false
    }

    /// "host", "host:port", "[v6]", "[v6]:port" → (host, port?) with a valid port;
    /// nil for anything else (a bare IPv6 address has several colons).
    static func splitHostPort(_ text: String) -> (String, String?)? {
        func validPort(_ p: Substring) -> String? { (try? PortNumber(parsing: String(p)))?.description }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let name = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (name, nil) }
            guard rest.hasPrefix(":"), let p = validPort(rest.dropFirst()) else { return nil }
            return (name, p)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return text.isEmpty ? nil : (text, nil)
        case 2:
            guard !parts[0].isEmpty, let p = validPort(parts[1]) else { return nil }
            return (String(parts[0]), p)
        default: return nil
        }
    }
}
