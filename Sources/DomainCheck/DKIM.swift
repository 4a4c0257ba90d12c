#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A DKIM key record (RFC 6376 3.6.1) found at `<selector>._domainkey.<domain>`.
public struct DKIMKey: Sendable, Equatable {
    public var selector: String
    /// The name asked.
    public var name: String
    /// Where a CNAME sent the question (a provider's name), if it did.
    public var cnameTarget: String?
    /// The key record's text; nil when the CNAME leads nowhere yet.
    public var record: String?
    /// `k=`: "rsa" (the default) or "ed25519".
    public var keyType: String
    /// Empty `p=`: the key was withdrawn (RFC 6376 3.6.1).
    public var revoked: Bool
    /// `t=y`: receivers are asked to treat failures as if unsigned.
    public var testing: Bool
    /// The key's length in bits where it can be read (RSA modulus, 256 for Ed25519).
    public var bits: Int?
    /// What is wrong with the record, if anything.
    public var problem: String?
}

/// The DKIM keys found at common selectors and the provider's known ones.
public struct DKIMReport: Sendable, Equatable {
    /// Every selector asked, in order.
    public var selectorsTried: [String]
    /// What was found (usable, revoked or broken).
    public var keys: [DKIMKey]
    /// Usable keys: published, not revoked, no problem.
    public var usableKeys: [DKIMKey] { keys.filter { !$0.revoked && $0.problem == nil } }
}

enum DKIMCheck {
    /// Selectors that services use by default; a provider's own are asked first.
    static let commonSelectors = ["default", "selector1", "selector2", "google", "k1", "k2", "k3", "s1", "s2",
                                  "mail", "dkim", "smtp", "mandrill", "mx"]

    static func run(domain: String, provider: MailProvider?, dns: DNSCache) -> DKIMReport {
        var selectors: [String] = []
        for s in (provider?.dkimSelectors ?? []) + commonSelectors where !selectors.contains(s) { selectors.append(s) }
        let names = selectors.map { "\($0)._domainkey.\(domain)" }
        // The CNAME too: a stub resolver's TXT answer does not say that it followed one,
        // and a CNAME to a provider (Microsoft 365, SendGrid, SES) says whose key it is.
        dns.prefetch(names.flatMap { [($0, .txt), ($0, .cname)] })
        var keys: [DKIMKey] = []
        for (selector, name) in zip(selectors, names) {
            let answer = dns.lookup(name, .txt)
            let texts = answer.texts.filter(looksLikeKey)
            let cname = answer.cnameTarget ?? dns.lookup(name, .cname).cnameTarget
            if texts.isEmpty {
                if let cname {
                    keys.append(DKIMKey(selector: selector, name: name, cnameTarget: cname, record: nil, keyType: "rsa", revoked: false,
                                        testing: false, bits: nil,
                                        problem: "points (CNAME) at \(cname), which has no key yet: turn on DKIM signing at the provider"))
                }
                continue
            }
            var key = parse(texts[0], selector: selector, name: name)
            key.cnameTarget = cname
            if texts.count > 1, key.problem == nil { key.problem = "\(texts.count) key records at one selector; receivers may pick either" }
            keys.append(key)
        }
        return DKIMReport(selectorsTried: selectors, keys: keys)
    }

    /// A TXT string that is meant as a DKIM key (not a wildcard TXT of something else).
    static func looksLikeKey(_ txt: String) -> Bool {
        let tags = tagList(txt)
        return tags["v"]?.uppercased() == "DKIM1" || tags["p"] != nil
    }

    static func parse(_ text: String, selector: String, name: String) -> DKIMKey {
        let tags = tagList(text)
        var key = DKIMKey(selector: selector, name: name, cnameTarget: nil, record: text, keyType: (tags["k"] ?? "rsa").lowercased(),
                          revoked: false, testing: false, bits: nil, problem: nil)
        key.testing = (tags["t"] ?? "").split(separator: ":").contains { $0.trimmedBlanks == "y" }
        if let v = tags["v"], v != "DKIM1" { key.problem = "v=\(v): only v=DKIM1 is a key record" }
        guard let p = tags["p"] else {
            key.problem = key.problem ?? "has no p= (the public key)"
            return key
        }
        let base64 = p.filter { !$0.isWhitespace }
        if base64.isEmpty { key.revoked = true; return key }
        guard let der = Data(base64Encoded: base64) else {
            key.problem = key.problem ?? "p= is not valid base64"
            return key
        }
        switch key.keyType {
        case "rsa":
            key.bits = rsaModulusBits(Array(der))
            if key.bits == nil { key.problem = key.problem ?? "p= is not an RSA public key" }
        case "ed25519":
            key.bits = der.count == 32 ? 256 : nil
            if key.bits == nil { key.problem = key.problem ?? "p= is not a 32-byte Ed25519 key" }
        default:
            key.problem = key.problem ?? "k=\(key.keyType) is not a key type receivers know (rsa, ed25519)"
        }
        return key
    }

    /// `tag=value; tag=value` (RFC 6376 3.2); the first of a repeated tag counts.
    static func tagList(_ text: String) -> [String: String] {
        var tags: [String: String] = [:]
        for part in text.split(separator: ";") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            let name = part[..<eq].trimmedBlanks.lowercased()
            let value = part[part.index(after: eq)...].trimmedBlanks
            if !name.isEmpty, tags[name] == nil { tags[name] = value }
        }
        return tags
    }

    /// Bits of the modulus in a SubjectPublicKeyInfo (or a bare RSAPublicKey), nil if neither.
    static func rsaModulusBits(_ der: [UInt8]) -> Int? {
        var reader = DERReader(der)
        guard var outer = reader.read(tag: 0x30) else { return nil }
        // SubjectPublicKeyInfo: SEQUENCE { SEQUENCE algorithm, BIT STRING key }
        if outer.peek == 0x30, outer.read(tag: 0x30) != nil, var bits = outer.read(tag: 0x03), bits.skip(1) {
            guard var rsa = bits.read(tag: 0x30), let modulus = rsa.read(tag: 0x02) else { return nil }
            return significantBits(modulus.rest)
        }
        var bare = DERReader(der)
        guard var rsa = bare.read(tag: 0x30), let modulus = rsa.read(tag: 0x02) else { return nil }
        return significantBits(modulus.rest)
    }

    private static func significantBits(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let first = bytes.firstIndex(where: { $0 != 0 }) else { return nil }
        return (bytes.endIndex - first - 1) * 8 + (8 - bytes[first].leadingZeroBitCount)
    }
}

/// Just enough DER to find an RSA modulus: tag, definite length, contents.
private struct DERReader {
    private(set) var rest: ArraySlice<UInt8>
    init(_ bytes: [UInt8]) { rest = bytes[...] }
    init(_ slice: ArraySlice<UInt8>) { rest = slice }

    var peek: UInt8? { rest.first }

    mutating func skip(_ n: Int) -> Bool {
        guard rest.count >= n else { return false }
        rest = rest.dropFirst(n)
        return true
    }

    /// The contents of the next element if it has `tag`.
    mutating func read(tag: UInt8) -> DERReader? {
        guard rest.count >= 2, rest.first == tag else { return nil }
        var i = rest.startIndex + 1
        var length = Int(rest[i]); i += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count >= 1, count <= 3, rest.endIndex - i >= count else { return nil }
            length = 0
            for _ in 0..<count { length = length << 8 | Int(rest[i]); i += 1 }
        }
        guard rest.endIndex - i >= length else { return nil }
        let contents = rest[i..<(i + length)]
        rest = rest[(i + length)...]
        return DERReader(contents)
    }
}
