#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A small XML reader for documents from the network that nobody vouches for
/// (autoconfig files): elements, attributes, text, comments, CDATA and the `<?xml …?>`
/// declaration. A document type declaration (`<!DOCTYPE`, and with it every entity
/// definition) is refused outright, so no entity expansion (billion laughs) and no
/// external fetch can happen; only the five predefined entities and numeric character
/// references are understood. Depth and element count are bounded; the caller bounds
/// the size before the bytes get here.
///
/// ```swift
/// let root = try UntrustedXML.parse(Data("<a x=\"1\"><b>t</b></a>".utf8))
/// root.children.first?.text   // "t"
/// ```
public struct UntrustedXML: Sendable, Equatable {
    /// The element's name as written (with any prefix).
    public var name: String
    /// Attributes, names as written.
    public var attributes: [String: String]
    /// Child elements in document order.
    public var children: [UntrustedXML]
    /// The element's own text (outside child elements), entity references resolved.
    public var text: String

    /// Why a document was refused: one line.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong ("the document declares a DTD (<!DOCTYPE): refused, entities are not expanded").
        public var reason: String
        /// The reason.
        public var description: String { reason }
    }

    /// Deepest nesting accepted.
    public static let maximumDepth = 32
    /// Most elements accepted.
    public static let maximumElements = 5_000

    /// The first child named `name` (case-sensitive, as XML is).
    public func child(_ name: String) -> UntrustedXML? { children.first { $0.name == name } }
    /// Every child named `name`.
    public func children(_ name: String) -> [UntrustedXML] { children.filter { $0.name == name } }

    /// Parses `data` (UTF-8) into its root element.
    /// - Throws: ``Refusal`` for a DTD, an unknown entity, broken nesting, too deep or too many elements.
    public static func parse(_ data: Data) throws(Refusal) -> UntrustedXML {
        var reader = Reader(bytes: Array(data))
        return try reader.document()
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var elements = 0

        init(bytes: [UInt8]) {
            // A UTF-8 byte order mark is allowed before the declaration.
            self.bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        }

        func fail(_ reason: String) -> Refusal { Refusal(reason: reason) }

        func starts(_ text: String) -> Bool {
            let utf8 = Array(text.utf8)
            return index + utf8.count <= bytes.count && Array(bytes[index..<index + utf8.count]) == utf8
        }

        mutating func skip(until text: String) throws(Refusal) {
            while index < bytes.count {
                if starts(text) { index += text.utf8.count; return }
                index += 1
            }
            throw fail("the document ends inside a comment, declaration or CDATA section")
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Skips what may stand outside the root: declaration, comments, processing
        /// instructions, white space. A DTD is refused here.
        mutating func skipMisc() throws(Refusal) {
            while true {
                skipSpace()
                if starts("<?") { try skip(until: "?>") }
                else if starts("<!--") { try skip(until: "-->") }
                else if starts("<!DOCTYPE") || starts("<!doctype") || starts("<!ENTITY") {
                    throw fail("the document declares a DTD (<!DOCTYPE): refused, so no entity is ever expanded")
                } else { return }
            }
        }

        mutating func document() throws(Refusal) -> UntrustedXML {
            try skipMisc()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else { throw fail("the document has no root element") }
            let root = try element(depth: 1)
            try skipMisc()
            guard index == bytes.count else { throw fail("the document has content after its root element") }
            return root
        }

        mutating func name() throws(Refusal) -> String {
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "<")].contains(byte) { break }
                index += 1
            }
            guard index > start else { throw fail("a name is missing in a tag") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// Reads `<name attr="v">…</name>` at `index` (which points at "<").
        mutating func element(depth: Int) throws(Refusal) -> UntrustedXML {
            guard depth <= UntrustedXML.maximumDepth else { throw fail("the document nests deeper than \(UntrustedXML.maximumDepth) elements") }
            elements += 1
            guard elements <= UntrustedXML.maximumElements else { throw fail("the document has more than \(UntrustedXML.maximumElements) elements") }
            index += 1
            var node = UntrustedXML(name: try name(), attributes: [:], children: [], text: "")
            while true {
                skipSpace()
                guard index < bytes.count else { throw fail("the document ends inside the tag <\(node.name)>") }
                if starts("/>") { index += 2; return node }
                if bytes[index] == UInt8(ascii: ">") { index += 1; break }
                let attribute = try name()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail("the attribute \(attribute) has no value") }
                index += 1
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                    throw fail("the value of attribute \(attribute) is not quoted")
                }
                let quote = bytes[index]
                index += 1
                let start = index
                while index < bytes.count, bytes[index] != quote {
                    if bytes[index] == UInt8(ascii: "<") { throw fail("an attribute value contains <") }
                    index += 1
                }
                guard index < bytes.count else { throw fail("the document ends inside an attribute value") }
                node.attributes[attribute] = try resolve(bytes[start..<index])
                index += 1
            }
            // Content: text, children, comments, CDATA, until the matching end tag.
            var text: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail("the element <\(node.name)> is never closed") }
                if starts("</") {
                    index += 2
                    let closing = try name()
                    skipSpace()
                    guard closing == node.name, index < bytes.count, bytes[index] == UInt8(ascii: ">") else {
                        throw fail("</\(closing)> closes <\(node.name)>")
                    }
                    index += 1
                    node.text = try resolve(text[...])
                    return node
                } else if starts("<!--") {
                    try skip(until: "-->")
                } else if starts("<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(until: "]]>")
                    // Kept apart from entity resolution: CDATA is literal. Escape its "&" so
                    // resolve() below leaves it as it is.
                    for byte in bytes[start..<(index - 3)] {
                        if byte == UInt8(ascii: "&") { text += Array("&amp;".utf8) } else { text.append(byte) }
                    }
                } else if starts("<!") {
                    throw fail("the document declares a DTD or entity inside an element: refused")
                } else if starts("<?") {
                    try skip(until: "?>")
                } else if bytes[index] == UInt8(ascii: "<") {
                    node.children.append(try element(depth: depth + 1))
                } else {
                    text.append(bytes[index])
                    index += 1
                }
            }
        }

        /// Resolves the predefined entities and character references; anything else is refused.
        func resolve(_ raw: ArraySlice<UInt8>) throws(Refusal) -> String {
            guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
            var out = ""
            let text = String(decoding: raw, as: UTF8.self)
            var rest = Substring(text)
            while let amp = rest.firstIndex(of: "&") {
                out += rest[..<amp]
                guard let semicolon = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semicolon) <= 12 else {
                    throw fail("a bare & in the document")
                }
                let entity = rest[rest.index(after: amp)..<semicolon]
                switch entity {
                case "lt": out += "<"
                case "gt": out += ">"
                case "amp": out += "&"
                case "quot": out += "\""
                case "apos": out += "'"
                default:
                    let scalar: UInt32?
                    if entity.hasPrefix("#x") { scalar = UInt32(entity.dropFirst(2), radix: 16) }
                    else if entity.hasPrefix("#") { scalar = UInt32(entity.dropFirst(1)) }
                    else { throw fail("the document uses the entity &\(entity.prefix(20)); which is not predefined: refused") }
                    guard let value = scalar.flatMap(Unicode.Scalar.init) else { throw fail("a character reference is invalid") }
                    out.unicodeScalars.append(value)
                }
                rest = rest[rest.index(after: semicolon)...]
            }
            return out + rest
        }
    }
}
