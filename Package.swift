// swift-tools-version:6.0
// The layout follows shared/DESIGN.md: one system-library target per C library,
// three Swift modules (Smtp, Storage, EmailSetupFCGI) and a test target per module.
//
// EmailSetupFCGI is a library, and the `emailsetup` executable is the one-file
// target EmailSetupMain that runs its command: the fuzz harnesses in Fuzz/ are
// executables and SwiftPM lets no target but a test link an executable target's
// code. The sources stay in Sources/EmailSetupFCGI under the same module name,
// so DESIGN.md's layout and `@testable import EmailSetupFCGI` are unchanged
// (docs/DECISIONS.md, "Fuzzing").
import PackageDescription

let package = Package(
    name: "EmailSetup",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "emailsetup", targets: ["EmailSetupMain"]),
        .library(name: "Smtp", targets: ["Smtp"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "OAuth", targets: ["OAuth"]),
        .library(name: "MailDNS", targets: ["MailDNS"]),
        .library(name: "HTTPS", targets: ["HTTPS"]),
        .library(name: "Discovery", targets: ["Discovery"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // libfcgi ships no pkg-config file on Debian; the modulemap links "fcgi".
        .systemLibrary(name: "CFastCGI", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        // IDNA2008 + UTS #46 for internationalized host names (Smtp/Validation/IDNA.swift).
        .systemLibrary(name: "CIDN2", pkgConfig: "libidn2", providers: [.apt(["libidn2-dev"])]),
        // c-ares, the stub resolver behind MailDNS (issue 18; docs/DECISIONS.md "DNS through c-ares").
        .systemLibrary(name: "CAres", pkgConfig: "libcares", providers: [.apt(["libc-ares-dev"])]),
        // A C target rather than a system library: it carries shims for OpenSSL macros.
        .target(
            name: "COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        // A C target like COpenSSL: curl_easy_setopt/getinfo are variadic, so it carries
        // fixed-arity shims. libcurl is not linked: shim.c loads it on first use
        // (dlopen), so a CGI request does not load its ~30 libraries (issue 19).
        .target(name: "CCurl"),
        // HTTPS through libcurl (the one file with libcurl's pointers), for OAuth and discovery.
        .target(name: "HTTPS", dependencies: ["CCurl"]),
        // OAuth 2.0 token client (issue 13): grants, PKCE, provider hints.
        .target(
            name: "OAuth",
            dependencies: ["HTTPS", "COpenSSL"]
        ),
        // From an address to verified SMTP settings (issue 18): SRV, autoconfig, MX, probes.
        .target(
            name: "Discovery",
            dependencies: ["HTTPS", "Smtp", "MailDNS", "ProcessIO"]
        ),
        .target(
            name: "Smtp",
            dependencies: ["COpenSSL", "CIDN2", "ProcessIO"]
        ),
        // DNS queries (SRV, MX, TXT, A, AAAA, CNAME) through c-ares; Smtp for IDN names.
        .target(name: "MailDNS", dependencies: ["CAres", "Smtp"]),
        // posix_spawn, unix-socket calls and threads, shared by the notifier, the SMTP
        // client, the FastCGI server and the tests.
        .target(name: "ProcessIO"),
        .target(
            name: "Storage",
            dependencies: [
                "CMariaDB", "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SPF, DKIM and DMARC of a sender domain (issue 18): pure logic over DomainCheckDNS.
        .target(name: "DomainCheck", dependencies: ["MailDNS"]),
        .target(
            name: "EmailSetupFCGI",
            dependencies: [
                "CFastCGI", "Smtp", "Storage", "OAuth", "ProcessIO", "MailDNS", "DomainCheck", "Discovery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The release binary is the deployed one (issue 19): the Swift runtime linked
        // statically, and relative relocations packed (DT_RELR, lld), so the dynamic
        // loader has less to do at every CGI start. `swift build -c release` makes it.
        .executableTarget(
            name: "EmailSetupMain", dependencies: ["EmailSetupFCGI"],
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                             .when(platforms: [.linux], configuration: .release)),
                // FoundationEssentials needs these and, linked statically without full
                // Foundation, does not name them itself.
                .linkedLibrary("_FoundationCollections", .when(platforms: [.linux], configuration: .release)),
                .linkedLibrary("_FoundationCShims", .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        // Helpers that start and stop real servers for tests live here, in one place.
        .target(
            name: "TestSupport",
            dependencies: ["ProcessIO", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "SmtpTests", dependencies: ["Smtp", "TestSupport"]),
        .testTarget(name: "MailDNSTests", dependencies: ["MailDNS", "TestSupport"]),
        .testTarget(name: "OAuthTests", dependencies: ["OAuth", "HTTPS", "TestSupport"]),
        .testTarget(name: "HTTPSTests", dependencies: ["HTTPS", "TestSupport"]),
        .testTarget(name: "DiscoveryTests", dependencies: ["Discovery", "MailDNS", "HTTPS", "Smtp", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
        .testTarget(name: "EmailSetupFCGITests", dependencies: ["EmailSetupFCGI", "Smtp", "Storage", "ProcessIO", "TestSupport", "DomainCheck"]),
        .testTarget(name: "DomainCheckTests", dependencies: ["DomainCheck", "MailDNS", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["ProcessIO", "TestSupport"]),

        // libFuzzer harnesses, one per attack surface (Fuzz/README.md). A plain build
        // makes programs that replay their corpus; scripts/fuzz builds them with
        // -sanitize=fuzzer,address into .build-fuzz and fuzzes.
        .target(name: "CFuzzerDriver", path: "Fuzz/Driver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", "EmailSetupFCGI", "Smtp", "Storage",
                                                    .product(name: "Logging", package: "swift-log")],
                path: "Fuzz/Support"),
        .executableTarget(name: "FuzzJSONBody", dependencies: ["EmailSetupFCGI", "FuzzSupport"],
                          path: "Fuzz/JSONBody", exclude: ["corpus", "fuzz.dict"]),
        .executableTarget(name: "FuzzSmtpReply", dependencies: ["Smtp", "FuzzSupport"],
                          path: "Fuzz/SmtpReply", exclude: ["corpus", "fuzz.dict"]),
        .executableTarget(name: "FuzzMessage", dependencies: ["Smtp", "FuzzSupport"],
                          path: "Fuzz/Message", exclude: ["corpus", "fuzz.dict"]),
        .executableTarget(name: "FuzzFastCGIRequest", dependencies: ["EmailSetupFCGI", "FuzzSupport"],
                          path: "Fuzz/FastCGIRequest", exclude: ["corpus", "fuzz.dict"]),
    ]
)
