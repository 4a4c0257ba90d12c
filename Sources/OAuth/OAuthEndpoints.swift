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

/// Who runs the authorization server. Microsoft and Google have their endpoints
/// derived; `generic` takes them from the settings.
public enum OAuthProvider: String, Sendable, Codable, CaseIterable {
    /// Microsoft identity platform (Entra ID, v2.0 endpoints), per tenant.
    case microsoft = "Microsoft"
    /// Google Identity (accounts.google.com, oauth2.googleapis.com).
    case google = "Google"
    /// Any RFC 6749 server, endpoints given explicitly.
    case generic = "Generic"

    /// Parses the stored value case-insensitively ("microsoft", "Google").
    public init?(storedValue: String) {
        guard let match = Self.allCases.first(where: { $0.rawValue.lowercased() == storedValue.lowercased() })
        else { return nil }
        self = match
    }
}

/// The URLs of one authorization server. All are `https`.
///
/// ```swift
/// let endpoints = try OAuthEndpoints.derived(provider: .microsoft, tenant: "contoso.onmicrosoft.com")
/// // endpoints.token == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
/// ```
public struct OAuthEndpoints: Sendable, Equatable {
    /// Where the user's browser signs in and consents (authorization code grant).
    public var authorization: String
    /// Where codes, refresh tokens and client credentials become access tokens.
    public var token: String
    /// The RFC 8628 device authorization endpoint, if the server has one.
    public var device: String?
    /// The RFC 7009 revocation endpoint, if the server has one (Microsoft has none).
    public var revocation: String?

    /// Makes a set of endpoints as given (the `generic` provider's settings).
    public init(authorization: String, token: String, device: String? = nil, revocation: String? = nil) {
        self.authorization = authorization
        self.token = token
        self.device = device
        self.revocation = revocation
    }

    /// The endpoints of `provider`.
    ///
    /// - Parameters:
    ///   - provider: Microsoft and Google endpoints are derived; `generic` returns `generic`.
    ///   - tenant: Microsoft's directory (tenant) ID or a verified domain, or `organizations`;
    ///     ignored for the others.
    ///   - generic: the endpoints for the `generic` provider, from the settings.
    ///   - baseOverride: "https://host[:port]" that replaces scheme, host and port of every
    ///     derived endpoint and keeps its path (tests, sovereign clouds, air-gapped sites).
    /// - Throws: `OAuthError` of kind `invalidInput` for a missing or malformed tenant,
    ///   override or generic endpoint.
    public static func derived(provider: OAuthProvider, tenant: String? = nil, generic: OAuthEndpoints? = nil,
                               baseOverride: String? = nil) throws -> OAuthEndpoints {
        let endpoints: OAuthEndpoints
        switch provider {
        case .microsoft:
            let tenant = try validTenant(tenant)
            let base = "https://login.microsoftonline.com/\(tenant)/oauth2/v2.0"
            endpoints = OAuthEndpoints(authorization: base + "/authorize", token: base + "/token",
                                       device: base + "/devicecode", revocation: nil)
        case .google:
            endpoints = OAuthEndpoints(authorization: "https://accounts.google.com/o/oauth2/v2/auth",
                                       token: "https://oauth2.googleapis.com/token",
                                       device: "https://oauth2.googleapis.com/device/code",
                                       revocation: "https://oauth2.googleapis.com/revoke")
        case .generic:
            guard let generic else {
                throw OAuthError(kind: .invalidInput, hint: "the Generic provider needs its authorization and token endpoints in the settings")
            }
            try generic.validate()
            return generic
        }
        guard let baseOverride, !baseOverride.isEmpty else { return endpoints }
        let base = try overrideBase(baseOverride)
        func rebased(_ url: String) -> String {
            guard let path = URLComponents(string: url)?.percentEncodedPath else { return url }
            return base + path
        }
        return OAuthEndpoints(authorization: rebased(endpoints.authorization), token: rebased(endpoints.token),
                              device: endpoints.device.map(rebased), revocation: endpoints.revocation.map(rebased))
    }

    /// Throws `invalidInput` unless every endpoint is an absolute `https` URL with a host
    /// and no fragment or user info.
    public func validate() throws {
        let named: [(String, String?)] = [("authorization", authorization), ("token", token),
                                          ("device authorization", device), ("revocation", revocation)]
        for (name, url) in named {
            guard let url else { continue }
            guard let parts = URLComponents(string: url), parts.scheme?.lowercased() == "https",
                  let host = parts.host, !host.isEmpty, parts.fragment == nil, parts.user == nil, parts.password == nil
            else {
                throw OAuthError(kind: .invalidInput, endpoint: url,
                                 hint: "the \(name) endpoint must be an https:// URL with a host (no #fragment, no user name): \(url)")
            }
        }
    }

    // Tenant IDs are GUIDs or domain names; the aliases (organizations, common,
    // consumers) are names too. Anything else would change the path, so it is refused.
    private static func validTenant(_ tenant: String?) throws -> String {
        let tenant = tenant?.trimmingWhitespace() ?? ""
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-".unicodeScalars)
        guard !tenant.isEmpty, tenant.count <= 253, tenant.unicodeScalars.allSatisfy(allowed.contains),
              tenant.first != ".", tenant.first != "-"
        else {
            throw OAuthError(kind: .invalidInput,
                             hint: "enter the Directory (tenant) ID or the tenant's domain (contoso.onmicrosoft.com): Microsoft Entra admin center → Overview")
        }
        return tenant
    }

    private static func overrideBase(_ value: String) throws -> String {
        guard let parts = URLComponents(string: value), let scheme = parts.scheme?.lowercased(), scheme == "https",
              let host = parts.host, !host.isEmpty, parts.path.isEmpty || parts.path == "/",
              parts.query == nil, parts.fragment == nil, parts.user == nil
        else {
            throw OAuthError(kind: .invalidInput, hint: "the OAuth base override must be https://host[:port] with no path: \(value)")
        }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "https://" + bracketed + (parts.port.map { ":\($0)" } ?? "")
    }
}
