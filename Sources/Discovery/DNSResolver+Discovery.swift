import MailDNS

/// Production's answers: the c-ares resolver with the configured servers. AAAA and A
/// are asked at once; NXDOMAIN and NODATA become "not found".
extension DNSResolver: DiscoveryDNS {
    public func serviceRecords(_ name: String) -> Result<[ServiceRecord], DiscoveryDNSFailure> {
        Self.convert(Result { () throws(DNSError) in try query(name, .srv) }) { records in
            records.compactMap {
                if case .srv(let priority, let weight, let port, let target) = $0 {
                    return ServiceRecord(priority: priority, weight: weight, port: port, target: target)
                }
                return nil
            }
        }
    }

    public func mailExchangers(_ domain: String) -> Result<[MailExchanger], DiscoveryDNSFailure> {
        Self.convert(Result { () throws(DNSError) in try query(domain, .mx) }) { records in
            records.compactMap {
                if case .mx(let preference, let exchange) = $0 { return MailExchanger(preference: preference, exchange: exchange) }
                return nil
            }
        }
    }

    public func addresses(_ host: String) -> Result<[String], DiscoveryDNSFailure> {
        let answers = queryAll([DNSQuestion(name: host, type: .aaaa), DNSQuestion(name: host, type: .a)])
        var found: [String] = []
        var failures: [DNSError] = []
        for answer in answers {
            switch answer {
            case .success(let records):
                for record in records {
                    switch record {
                    case .a(let address), .aaaa(let address): found.append(address)
                    default: break
                    }
                }
            case .failure(let error): failures.append(error)
            }
        }
        if !found.isEmpty { return .success(found) }
        if let hard = failures.first(where: { ![.nxdomain, .nodata].contains($0.kind) }) {
            return .failure(DiscoveryDNSFailure(notFound: false, hint: hard.hint))
        }
        return .failure(DiscoveryDNSFailure(notFound: true, hint: "\(host) does not resolve"))
    }

    private static func convert<T>(_ result: Result<[DNSRecord], DNSError>, _ map: ([DNSRecord]) -> [T]) -> Result<[T], DiscoveryDNSFailure> {
        switch result {
        case .success(let records): return .success(map(records))
        case .failure(let error):
            return .failure(DiscoveryDNSFailure(notFound: [.nxdomain, .nodata].contains(error.kind), hint: error.hint))
        }
    }
}
