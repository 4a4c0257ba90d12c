@testable import DomainCheck

/// Answers from a table: TXT strings, addresses and MX per name; anything else NXDOMAIN.
struct FakeDNS: DomainCheckDNS {
    var txt: [String: [String]] = [:]
    var a: [String: [String]] = [:]
    var aaaa: [String: [String]] = [:]
    var mx: [String: [String]] = [:]
    var cname: [String: String] = [:]
    /// Names that exist (NODATA rather than NXDOMAIN for other types).
    var existing: Set<String> = []
    /// Every question fails as if no server answered.
    var unreachable = false

    func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer {
        if unreachable { return .failed(hint: "no DNS server answered at 127.0.0.1:1 within 1 s", unreachable: true) }
        let key = name.lowercased()
        if type == .cname { return cname[key].map { .records([.cname($0)]) } ?? .noRecords }
        if let target = cname[key] {
            let rest = lookup(target, type)
            switch rest {
            case .records(let r): return .records([.cname(target)] + r)
            case .noSuchName, .noRecords: return .records([.cname(target)])
            default: return rest
            }
        }
        let records: [DomainCheckDNSRecord]
        switch type {
        case .txt: records = (txt[key] ?? []).map { .txt($0) }
        case .a: records = (a[key] ?? []).map { .address($0) }
        case .aaaa: records = (aaaa[key] ?? []).map { .address($0) }
        case .mx: records = (mx[key] ?? []).enumerated().map { .mx(preference: $0.offset * 10, exchange: $0.element) }
        case .cname: records = []
        }
        if !records.isEmpty { return .records(records) }
        let known = existing.contains(key) || txt[key] != nil || a[key] != nil || aaaa[key] != nil || mx[key] != nil
        return known ? .noRecords : .noSuchName
    }
}
