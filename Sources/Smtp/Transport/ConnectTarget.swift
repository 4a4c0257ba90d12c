/// What a session connects to, decided by the same rules a settings form uses:
/// the host is parsed with ``HostName`` (refused with its words) and every resolved
/// address is checked against ``SmtpSettings/deniedNetworks``. Pure; tested without
/// a socket.
enum ConnectTarget {
    /// The canonical host for `text`, or the error a session fails with: stage `.dns`,
    /// kind `.invalidInput`, and the hint ``HostName/refusal(_:)`` gives a settings form.
    static func host(_ text: String) throws -> HostName {
        switch HostName.validate(text) {
        case .success(let host):
            return host
        case .failure(let error):
            throw SmtpError(stage: .dns, kind: .invalidInput,
                            hint: "the host “\(DomainName.shorten(ReplyParser.printable(text)))” \(HostName.refusal(error))")
        }
    }

    /// Splits resolved addresses into the indexes that may be tried (in order) and one
    /// refusal sentence for each address inside a denied network.
    static func screen(_ addresses: [String], host: HostName, denied: [IPNetwork]) -> (allowed: [Int], refusals: [String]) {
        var allowed: [Int] = []
        var refusals: [String] = []
        for (index, address) in addresses.enumerated() {
            if let network = IPNetwork.firstContaining(address, in: denied) {
                refusals.append(IPNetwork.refusal(address: address, network: network,
                                                  host: host.kind == .domainName ? host.ascii : nil))
            } else {
                allowed.append(index)
            }
        }
        return (allowed, refusals)
    }
}
