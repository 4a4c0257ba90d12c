/// SPF macros (RFC 7208 7): `%{d}`, `%{i}`, `%{s}`, `%{l}`, `%{o}`, `%{v}`, `%{h}`
/// with digit and `r` transformers and delimiters, plus `%%`, `%_`, `%-`.
///
/// `%{p}` (the validated reverse name) is expanded as "unknown", as RFC 7208 7.3
/// allows; a macro needing a value the check does not know (the sending IP when it
/// cannot be known, the HELO name) makes the expansion nil: the term is reported as
/// not evaluated rather than guessed.
struct SPFMacro {
    /// What the letters stand for; nil where unknown.
    struct Context {
        var sender: String
        var domain: String
        var ip: IPAddress?
        var helo: String?
    }

    /// Throws for macro syntax errors (a permerror when the record is parsed).
    static func validate(_ spec: String, term: String) throws(SPFSyntaxError) {
        let dummy = Context(sender: "a@b", domain: "b", ip: IPAddress("192.0.2.1"), helo: "b")
        if case .failure(let e) = expandResult(spec, dummy) { throw SPFSyntaxError(term: term, reason: e) }
    }

    /// True when `spec` has a macro at all.
    static func hasMacro(_ spec: String) -> Bool { spec.contains("%") }

    /// The expanded domain, or nil when a value it needs is not known.
    static func expand(_ spec: String, _ context: Context) -> String? {
        guard case .success(let s) = expandResult(spec, context) else { return nil }
        return s
    }

    private enum Outcome { case success(String), unknown, failure(String) }

    private static func expandResult(_ spec: String, _ c: Context) -> Outcome {
        var out = ""
        var chars = spec[...]
        while let ch = chars.first {
            chars = chars.dropFirst()
            guard ch == "%" else { out.append(ch); continue }
            guard let next = chars.first else { return .failure("ends with a lone %") }
            chars = chars.dropFirst()
            switch next {
            case "%": out.append("%")
            case "_": out.append(" ")
            case "-": out.append("%20")
            case "{":
                guard let close = chars.firstIndex(of: "}") else { return .failure("has %{ without }") }
                let body = chars[..<close]
                chars = chars[chars.index(after: close)...]
                guard let letter = body.first?.lowercased().first else { return .failure("has an empty %{}") }
                var rest = body.dropFirst()
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(digits.count)
                var reverse = false
                if rest.first == "r" || rest.first == "R" { reverse = true; rest = rest.dropFirst() }
                guard rest.allSatisfy({ ".-+,/_=".contains($0) }) else { return .failure("has %{\(body)}, which is not a macro") }
                if !digits.isEmpty, Int(digits) == 0 { return .failure("has %{\(body)}: zero labels") }
                let value: String?
                let (local, senderDomain) = split(c.sender)
                switch letter {
                case "s": value = c.sender
                case "l": value = local
                case "o": value = senderDomain
                case "d": value = c.domain
                case "i": value = c.ip?.macroForm
                case "p": value = "unknown"
                case "v": value = c.ip.map { $0.isIPv4 ? "in-addr" : "ip6" }
                case "h": value = c.helo
                case "c", "r", "t": return .failure("uses %{\(letter)}, which only exp= may use")
                default: return .failure("has %{\(body)}, an unknown macro letter")
                }
                guard let value else { return .unknown }
                let delimiters = rest.isEmpty ? Set<Character>(["."]) : Set(rest)
                var parts = value.split(omittingEmptySubsequences: false) { delimiters.contains($0) }.map(String.init)
                if reverse { parts.reverse() }
                if let n = Int(digits), n < parts.count { parts = Array(parts.suffix(n)) }
                out += parts.joined(separator: ".")
            default:
                return .failure("has %\(next), which is not a macro (write %% for a percent sign)")
            }
        }
        // RFC 7208 7.3: longer than 253 characters: drop labels from the left.
        while out.utf8.count > 253, let dot = out.firstIndex(of: ".") { out = String(out[out.index(after: dot)...]) }
        return .success(out)
    }

    private static func split(_ sender: String) -> (String, String) {
        guard let at = sender.lastIndex(of: "@") else { return ("postmaster", sender) }
        let local = sender[..<at]
        return (local.isEmpty ? "postmaster" : String(local), String(sender[sender.index(after: at)...]))
    }
}
