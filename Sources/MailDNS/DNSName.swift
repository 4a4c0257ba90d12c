import Smtp

/// The form of a name sent to the server: ASCII, A-labels for internationalized
/// labels, no trailing dot, checked against DNS's limits (63 octets a label, 253 in all).
///
/// Labels starting with "_" (`_submission._tcp`, `_dmarc`, `_domainkey`) are not host
/// names, so only the labels after the last of them go through `HostName`'s IDNA
/// mapping (UTS #46, IDNA2008): "_dmarc.bücher.example" asks for
/// "_dmarc.xn--bcher-kva.example". A name that is all ASCII is sent as it is.
enum DNSName {
    static func ascii(_ name: String, type: DNSRecordType) throws(DNSError) -> String {
        func refuse(_ why: String) -> DNSError {
            DNSError(kind: .badName, name: name, type: type, hint: "\"\(name)\" cannot be looked up in DNS: \(why)")
        }
        var text = name
        if text.hasSuffix("."), text.count > 1 { text.removeLast() }
        if text.isEmpty || text == "." { throw refuse("the name is empty") }
        if text.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F || $0 == "\\" }) {
            throw refuse("it contains a space, a control character or a backslash")
        }
        var labels = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if labels.contains(where: \.isEmpty) { throw refuse("it has an empty label (two dots in a row, or a leading dot)") }
        if !text.unicodeScalars.allSatisfy(\.isASCII) {
            let firstHostLabel = (labels.lastIndex { $0.hasPrefix("_") }).map { $0 + 1 } ?? 0
            if labels[..<firstHostLabel].contains(where: { !$0.unicodeScalars.allSatisfy(\.isASCII) }) {
                throw refuse("labels starting with \"_\" and those before them must be ASCII")
            }
            guard firstHostLabel < labels.count else { throw refuse("it has no host labels") }
            let hostPart = labels[firstHostLabel...].joined(separator: ".")
            switch HostName.validate(hostPart) {
            case .success(let host) where host.kind == .domainName:
                labels = Array(labels[..<firstHostLabel]) + host.ascii.split(separator: ".").map(String.init)
            case .success:
                throw refuse("\"\(hostPart)\" is an IP address, not a name")
            case .failure(let error):
                throw refuse(error.reason)
            }
        }
        if let long = labels.first(where: { $0.utf8.count > 63 }) {
            throw refuse("the label \"\(long.prefix(20))…\" is longer than 63 characters")
        }
        let ascii = labels.joined(separator: ".")
        if ascii.utf8.count > 253 { throw refuse("it is longer than 253 characters") }
        return ascii
    }
}
