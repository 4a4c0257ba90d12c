#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Storage

/// GET email_history, POST email_history/{version}/restore and GET email_audit.
extension APIHandler {
    /// `limit` and `offset` from the query string, bounded.
    static func paging(_ query: String, defaultLimit: Int = 50) throws -> (limit: Int, offset: Int) {
        var limit = defaultLimit, offset = 0
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "limit":
                guard let n = Int(kv[1]), (1...500).contains(n) else { throw APIError.badRequest("limit", "must be a whole number from 1 to 500") }
                limit = n
            case "offset":
                guard let n = Int(kv[1]), n >= 0, n <= 10_000_000 else { throw APIError.badRequest("offset", "must be a whole number from 0") }
                offset = n
            default: continue
            }
        }
        return (limit, offset)
    }

    static func iso8601(_ date: Date) -> String {
        UTCTime.iso8601(date)
    }

    func history(_ request: Request) throws -> Response {
        let (limit, offset) = try Self.paging(request.query)
        // One entry more than the page: the version before the page's oldest, for its changes.
        let fetched = try repository.history(limit: limit + 1, offset: offset)
        let entries = Array(fetched.prefix(limit))
        let byVersion = Dictionary(fetched.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        // Versions are contiguous and newest first, so every tested version on this
        // page is among the newest `offset + limit` tested versions.
        let tested = try repository.versionsWithSuccessfulTests(limit: offset + limit)
        let good = tested.first
        let testedSet = Set(tested)
        let current = entries.isEmpty ? nil : try repository.loadSettings()
        // Values of plain fields only; a secret is only ever `"changed": true`.
        let versions: [JSONValue] = entries.map { e in
            let changes = HistoryChanges.changes(of: e, previous: byVersion[e.version - 1], fields: Self.historyFields,
                                                 defaults: Self.historyDefaults, secrets: Self.historySecrets)
            // What a restore of this version would change now (the page's confirmation shows it).
            let restoring = current.map {
                HistoryChanges.restoring(e, over: $0.values, fields: Self.historyFields, defaults: Self.historyDefaults, secrets: Self.historySecrets)
            } ?? []
            return .object([
                ("version", .number(Double(e.version))), ("saved_at", .string(Self.iso8601(e.savedAt))),
                ("saved_by", .string(e.savedBy)), ("remote_address", e.remoteAddress.map { .string($0) } ?? .null),
                ("changed_fields", .array(e.changedFields.map { .string($0) })),
                ("changes", .array(changes.map(Self.changeJSON))),
                ("restore_changes", .array(restoring.map(Self.changeJSON))),
                ("restored_from", e.restoredFrom.map { .number(Double($0)) } ?? .null),
                ("password_removed", .bool(e.passwordPurgedAt != nil)),
                ("tested_ok", .bool(testedSet.contains(e.version))),
            ])
        }
        var events: [JSONValue] = []
        if let newest = entries.first?.version, let oldest = entries.last?.version {
            events = try repository.testEvents(versions: oldest...newest, limit: 100)
                .map(Self.eventJSON)
        }
        return .success(.object([("versions", .array(versions)), ("events", .array(events)),
                                 ("last_known_good_version", good.map { .string(String($0)) } ?? .null),
                                 ("limit", .number(Double(limit))), ("offset", .number(Double(offset)))]))
    }

    /// The audit actions that prove settings, with the `kind` the history calls them.
    static let sessionKinds = ["test.send": "test_email", "test.check": "check"]

    static let historyFields = SettingsKey.writable.map(\.rawValue)
    static let historyDefaults = Dictionary(uniqueKeysWithValues: SettingsKey.writable.compactMap { key in key.defaultValue.map { (key.rawValue, $0) } })
    static let historySecrets = Set(SettingsKey.secrets.map(\.rawValue))

    static func changeJSON(_ change: FieldChange) -> JSONValue {
        let label: JSONValue = .string(SettingsSchema.label(named: change.field))
        if change.isSecret {
            return .object([("field", .string(change.field)), ("label", label), ("changed", .bool(true))])
        }
        return .object([("field", .string(change.field)), ("label", label),
                        ("old", change.old.map { .string($0) } ?? .null), ("new", change.new.map { .string($0) } ?? .null)])
    }

    /// A test email or check from the audit log: who, when, for which version, how it
    /// ended and, for a failure, where and why (from the row's detail).
    static func eventJSON(_ e: AuditEntry) -> JSONValue {
        let detail = e.detail.flatMap { try? JSONValue.parse(Array($0.utf8)) }
        func text(_ key: String) -> JSONValue { detail?[key]?.stringValue.map { .string($0) } ?? .null }
        return .object([
            ("at", .string(iso8601(e.at))), ("actor", .string(e.actor)),
            ("kind", .string(sessionKinds[e.action] ?? e.action)), ("outcome", .string(e.outcome)),
            ("settings_version", e.settingsVersion.map { .number(Double($0)) } ?? .null),
            ("stage", text("stage")), ("error_kind", text("kind")), ("hint", text("hint")),
            ("to", text("to")),
        ])
    }

    func restore(version: Int, request: Request, actor: String) throws -> Response {
        let expected = try ETag.expectedVersion(ifMatch: request.headers["if-match"])
        let restored = try repository.restore(version: version, expectedVersion: expected, actor: actor, remoteAddress: request.remoteAddress)
        logger.info("settings restored", metadata: ["from": "\(version)", "version": "\(restored.version)", "user": "\(actor)"])
        settingsCommitted(restored.version)
        let (snapshot, good) = try repository.loadSettingsWithLastKnownGood()
        var warnings: [(String, JSONValue)] = []
        switch restored.password {
        case .restored: break
        case .keptCurrent:
            warnings.append((SettingsKey.password.rawValue, .string(
                "This version's password was removed from history when the password was cleared; the current password state is kept.")))
        case .cleared:
            warnings.append((SettingsKey.password.rawValue, .string(
                "This version had no password, so the password is now cleared and removed from history; enter it again to use it.")))
        }
        let view = Self.publicView(snapshot, lastKnownGood: good)
            + [("restored_from", .number(Double(version))), ("warnings", .object(warnings))]
        return .success(.object(view), headers: [("ETag", ETag.format(snapshot.version))])
    }

    func audit(_ request: Request) throws -> Response {
        let (limit, offset) = try Self.paging(request.query)
        let entries = try repository.audit(limit: limit, offset: offset)
        let rows: [JSONValue] = entries.map { e in
            .object([
                ("id", .number(Double(e.id))), ("at", .string(Self.iso8601(e.at))), ("actor", .string(e.actor)),
                ("remote_address", e.remoteAddress.map { .string($0) } ?? .null), ("action", .string(e.action)),
                ("outcome", .string(e.outcome)),
                ("detail", e.detail.flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? e.detail.map { .string($0) } ?? .null),
                ("settings_version", e.settingsVersion.map { .number(Double($0)) } ?? .null),
                // How many refusals an aggregated row stands for (1 for every other row),
                // and when the latest came.
                ("count", .number(Double(e.count))), ("last_at", e.lastAt.map { .string(Self.iso8601($0)) } ?? .null),
            ])
        }
        return .success(.object([("entries", .array(rows)), ("limit", .number(Double(limit))), ("offset", .number(Double(offset)))]))
    }
}
