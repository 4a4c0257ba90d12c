import MailDNS

/// MailDNS's c-ares resolver answers the domain check's questions; `queryAll` asks a
/// batch (the DKIM selectors, an SPF record's a and mx terms) at once.
extension DNSResolver: DomainCheckDNS {
    public func lookup(_ name: String, _ type: DomainCheckDNSType) -> DomainCheckDNSAnswer {
        Self.answer(Result { () throws(DNSError) in try query(name, type.mailDNS) })
    }

    public func lookupAll(_ questions: [(name: String, type: DomainCheckDNSType)]) -> [DomainCheckDNSAnswer] {
        queryAll(questions.map { DNSQuestion(name: $0.name, type: $0.type.mailDNS) }).map(Self.answer)
    }

    private static func answer(_ result: Result<[DNSRecord], DNSError>) -> DomainCheckDNSAnswer {
        switch result {
        case .success(let records):
            return .records(records.compactMap { record in
                switch record {
                case .a(let address), .aaaa(let address): .address(address)
                case .mx(let preference, let exchange): .mx(preference: preference, exchange: exchange)
                case .txt(let text): .txt(text)
                case .cname(let target): .cname(target)
                case .srv: nil
                }
            })
        case .failure(let error):
            switch error.kind {
            case .nxdomain: return .noSuchName
            case .nodata: return .noRecords
            // No server answered, or the one configured refuses us: nothing can be learnt.
            case .timeout, .refused: return .failed(hint: error.hint, unreachable: true)
            case .servfail, .malformed, .badName, .other: return .failed(hint: error.hint, unreachable: false)
            }
        }
    }
}

extension DomainCheckDNSType {
    var mailDNS: DNSRecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .mx: .mx
        case .txt: .txt
        case .cname: .cname
        }
    }
}
