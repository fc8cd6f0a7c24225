//! Same zone files, same questions: popdns answers as NSD (from Debian)
//! does. Both servers load the standard test zones, a zone of DNAMEs,
//! CNAME loops and mixed case, and a zone of the rarer record types
//! (DNSSEC, LOC, RP, URI, ...); every owner name of those files, names below
//! and beside them, is asked for a dozen types over UDP, and the responses
//! are compared section by section: rcode, AA, TC and every record (names
//! compared without case: NSD lowercases the names it stores, popdns keeps
//! the zone file's case, and both are correct).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use popdns_tests::*;

/// DNAME substitution (RFC 6672), chains through DNAMEs and CNAMEs, loops,
/// a substitution that would be too long, and names in mixed case.
const DNAME_ZONE: &str = "$ORIGIN dn.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.10
www IN AAAA 2001:db8::10
Old IN DNAME New.dn.test.
new IN NS ns1
other IN DNAME target.example.org.
loop IN DNAME loop.dn.test.
long IN DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.dn.test.
inner IN DNAME www.dn.test.
sub IN DNAME wild.dn.test.
*.wild IN A 192.0.2.40
self IN DNAME dn.test.
to-cdn IN DNAME cdn.example.
la IN CNAME lb
lb IN CNAME la
lc IN CNAME lc
cn IN CNAME x.Old.dn.test.
d2 IN DNAME old.dn.test.
MiXed IN CNAME WWW.Dn.Test.
mx IN MX 10 NS1.dn.test.
srv IN SRV 0 5 443 www
";

/// A whole zone redirected by a DNAME at its apex.
const APEX_DNAME_ZONE: &str = "$ORIGIN other.test.
$TTL 300
@ IN SOA ns1.dn.test. hostmaster 1 7200 3600 1209600 60
@ IN NS ns1.dn.test.
@ IN DNAME dn.test.
";

/// Record types hickory's zone parser does not read (DNSSEC, LOC, RP, ...)
/// beside ones it does, a signed CNAME and a DS at a delegation.
const TYPES_ZONE: &str = r#"$ORIGIN types.test.
$TTL 300
@ IN SOA ns1 hostmaster 3 7200 3600 1209600 60
@ IN NS ns1
@ IN DNSKEY 257 3 8 AwEAAag=
@ IN DNSKEY 256 3 ECDSAP256SHA256 ( AwEAAbc= )
@ IN NSEC3PARAM 1 0 10 AABBCCDD
@ IN CAA 0 issue "letsencrypt.org"
@ IN ZONEMD 2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE
ns1 IN A 192.0.2.1
ns1 IN RRSIG A 8 2 300 20261231000000 20261101000000 12345 types.test. aGVsbG8gd29ybGQ=
ns1 IN NSEC sig.types.test. A RRSIG NSEC
sig IN CNAME ns1
sig IN RRSIG CNAME 8 2 300 20261231000000 20261101000000 12345 types.test. aGVsbG8=
sig IN NSEC del.types.test. CNAME RRSIG NSEC
del IN NS ns.del
del IN DS 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.del IN A 192.0.2.2
0p9mhaveqvm6t7vbl5lop2u3t2rp3tom IN NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG
spf IN SPF "v=spf1 -all"
loc IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
loc2 IN LOC 42 21 54 S 71 06 18 W -24m 30m
rp IN RP mbox.types.test. txt.types.test.
afs IN AFSDB 1 afs.types.test.
uri IN URI 10 1 "https://example.com/"
x25 IN X25 "311061700956"
minfo IN MINFO rm.types.test. em.types.test.
eui IN EUI48 00-00-5e-00-53-2a
eui64 IN EUI64 00-00-5e-ef-10-00-00-2a
kx IN KX 10 kx.types.test.
dhcid IN DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
cds IN CDS 12345 8 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cdnskey IN CDNSKEY 257 3 8 AwEAAag=
smimea IN SMIMEA 3 1 1 0123456789abcdef
csync IN CSYNC 66 3 A NS AAAA
naptr IN NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .
hinfo IN HINFO "PC" "Linux"
sshfp IN SSHFP 1 1 123456789abcdef67890123456789abcdef67890
tlsa IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
generic IN TYPE65280 \# 4 0A000001
mxglue IN MX 10 ns.del.types.test.
mxglue IN MX 20 ns1.types.test.
kx2 IN KX 10 ns1.types.test.
rt IN RT 10 ns1.types.test.
mb IN MB ns1.types.test.
mg IN MG ns1.types.test.
both IN A 192.0.2.7
both IN MX 10 both.types.test.
*.wild IN A 192.0.2.50
*.wild IN AAAA 2001:db8::50
wmx IN MX 10 a.wild.types.test.
wmx IN MX 20 b.wild.types.test.
wmx IN MX 30 both.types.test.
wns IN NS x.wild.types.test.
wns IN NS ns1.types.test.
big IN TXT "00 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "01 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "02 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "03 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "04 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "05 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "06 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "07 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "08 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "09 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "10 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "11 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "12 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "13 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "14 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "15 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "16 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "17 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "18 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "19 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "20 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "21 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "22 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "23 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "24 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "25 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "26 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "27 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "28 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big IN TXT "29 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
manyns IN NS n0.manyns.types.test.
n0.manyns IN A 192.0.2.100
n0.manyns IN AAAA 2001:db8::64
manyns IN NS n1.manyns.types.test.
n1.manyns IN A 192.0.2.101
n1.manyns IN AAAA 2001:db8::65
manyns IN NS n2.manyns.types.test.
n2.manyns IN A 192.0.2.102
n2.manyns IN AAAA 2001:db8::66
manyns IN NS n3.manyns.types.test.
n3.manyns IN A 192.0.2.103
n3.manyns IN AAAA 2001:db8::67
manyns IN NS n4.manyns.types.test.
n4.manyns IN A 192.0.2.104
n4.manyns IN AAAA 2001:db8::68
manyns IN NS n5.manyns.types.test.
n5.manyns IN A 192.0.2.105
n5.manyns IN AAAA 2001:db8::69
manyns IN NS n6.manyns.types.test.
n6.manyns IN A 192.0.2.106
n6.manyns IN AAAA 2001:db8::6a
manyns IN NS n7.manyns.types.test.
n7.manyns IN A 192.0.2.107
n7.manyns IN AAAA 2001:db8::6b
manyns IN NS n8.manyns.types.test.
n8.manyns IN A 192.0.2.108
n8.manyns IN AAAA 2001:db8::6c
manyns IN NS n9.manyns.types.test.
n9.manyns IN A 192.0.2.109
n9.manyns IN AAAA 2001:db8::6d
manyns IN NS n10.manyns.types.test.
n10.manyns IN A 192.0.2.110
n10.manyns IN AAAA 2001:db8::6e
manyns IN NS n11.manyns.types.test.
n11.manyns IN A 192.0.2.111
n11.manyns IN AAAA 2001:db8::6f
"#;

const ZONES: [(&str, &str); 5] = [
    ("cdn.example", TEST_ZONE),
    ("elsewhere.test", SECOND_ZONE),
    ("dn.test", DNAME_ZONE),
    ("other.test", APEX_DNAME_ZONE),
    ("types.test", TYPES_ZONE),
];

fn start_nsd(dir: &TempDir, port: u16) -> Nsd {
    let d = dir.path().display().to_string();
    let mut conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  ip-address: ::1@{port}\n  username: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  chroot: \"\"\n  server-count: 1\n  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n  verbosity: 1\n  logfile: \"{d}/nsd.log\"\nremote-control:\n  control-enable: no\n"
    );
    for (name, text) in ZONES {
        dir.write(&format!("{name}.zone"), text);
        conf.push_str(&format!(
            "zone:\n  name: {name}\n  zonefile: \"{name}.zone\"\n"
        ));
    }
    Nsd::start(&dir.write("nsd.conf", &conf))
}

/// The OPT record a question carries.
#[derive(Clone, Copy)]
enum Opt {
    None,
    Plain,
    /// EDNS with the DO bit: the zones here are not signed, so NSD answers
    /// as without it, with DO echoed.
    Do,
}

fn ask(addr: SocketAddr, name: &str, t: RecordType, opt: Opt) -> Option<Message> {
    let mut m = query_msg(name, t, !matches!(opt, Opt::None));
    if let (Opt::Do, Some(e)) = (opt, m.edns.as_mut()) {
        e.set_dnssec_ok(true);
    }
    // RD and CD set: both must be echoed.
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = true;
    let q = m.to_vec().unwrap();
    let raw = udp_exchange(addr, &q, Duration::from_millis(1000))?;
    Message::from_vec(&raw).ok()
}

/// One record as compared: lowercase text; a DNAME target (which hickory
/// leaves undecoded) as a name; the RFC 1035 mailbox types, whose names
/// both servers compress (so their raw bytes depend on the packet), by type.
fn record_text(r: &Record) -> String {
    let code = u16::from(r.record_type());
    if let RData::Unknown { rdata, .. } = &r.data {
        let raw = &rdata.anything;
        let head = format!("{} {} {}", r.name, r.ttl, r.dns_class).to_lowercase();
        match code {
            39 => {
                use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
                let target = Name::read(&mut BinDecoder::new(raw))
                    .map_or_else(|e| format!("bad name: {e}"), |n| n.to_string())
                    .to_lowercase();
                return format!("{head} dname {target}");
            }
            3 | 4 | 7 | 8 | 9 | 14 => return format!("{head} type{code} (compressed names)"),
            _ => {}
        }
    }
    r.to_string().to_lowercase()
}

/// What is compared: header bits that carry meaning, and every record.
fn summary(m: &Message) -> String {
    let section = |rs: &[Record]| -> String {
        rs.iter()
            .map(|r| format!("  {}\n", record_text(r)))
            .collect()
    };
    format!(
        "rcode {:?} aa {} tc {} rd {} ra {} ad {} cd {} edns {:?}\nanswer:\n{}authority:\n{}additional:\n{}",
        m.metadata.response_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        m.metadata.recursion_desired,
        m.metadata.recursion_available,
        m.metadata.authentic_data,
        m.metadata.checking_disabled,
        m.edns
            .as_ref()
            .map(|e| (e.max_payload(), e.version(), e.flags().dnssec_ok)),
        section(&m.answers),
        section(&m.authorities),
        section(&m.additionals),
    )
}

/// Owner names of a zone file (the first token of lines that start one).
fn owners(origin: &str, text: &str) -> Vec<String> {
    let mut out = vec![format!("{origin}.")];
    for line in text.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if line.starts_with([' ', '\t', '$', ';']) || first == "@" {
            continue;
        }
        let name = if first.ends_with('.') {
            first.to_string()
        } else {
            format!("{first}.{origin}.")
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Ask both servers every name for every type; push each difference.
/// Returns how many questions both answered.
fn compare(
    nsd: SocketAddr,
    popdns: SocketAddr,
    names: &[String],
    types: &[RecordType],
    opt: Opt,
    differ: &mut Vec<String>,
) -> usize {
    let mut asked = 0;
    for n in names {
        for &t in types {
            let (Some(a), Some(b)) = (ask(nsd, n, t, opt), ask(popdns, n, t, opt)) else {
                differ.push(format!(
                    "{n} {t} (to {popdns}): no answer from one of the servers"
                ));
                continue;
            };
            asked += 1;
            let (a, b) = (summary(&a), summary(&b));
            if a != b {
                differ.push(format!(
                    "{n} {t} (to {popdns})\n--- nsd\n{a}--- popdns\n{b}"
                ));
            }
        }
    }
    asked
}

#[test]
fn answers_match_nsd() {
    let nsd_dir = TempDir::new("nsd-parity");
    let port = free_port();
    let _nsd = start_nsd(&nsd_dir, port);
    let nsd: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let files: Vec<(String, &str)> = ZONES
        .iter()
        .map(|&(name, text)| (format!("{name}.zone"), text))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (f.as_str(), *t)).collect();
    let s = Popdns::start_with(&basic_config(""), &files);
    poll_until(Duration::from_secs(20), || {
        ask(nsd, "dn.test.", RecordType::SOA, Opt::Plain).is_some()
    })
    .expect("nsd did not answer");

    let mut names = Vec::new();
    for (origin, text) in ZONES {
        for o in owners(origin, text) {
            let bare = o.trim_start_matches("*.").to_string();
            names.push(o.clone());
            names.push(format!("x.{bare}"));
            names.push(format!("a.b.{bare}"));
            names.push(o.to_uppercase());
        }
    }
    // A DNAME substitution longer than 255 octets: YXDOMAIN.
    names.push(format!(
        "{}.{}.long.dn.test.",
        "b".repeat(63),
        "c".repeat(60)
    ));
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::NS,
        RecordType::SOA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::CNAME,
        RecordType::DNAME,
        RecordType::SRV,
        RecordType::DS,
        RecordType::ANY,
        RecordType::CAA,
        RecordType::HINFO,
        RecordType::NAPTR,
        RecordType::SSHFP,
        RecordType::TLSA,
        RecordType::DNSKEY,
        RecordType::RRSIG,
        RecordType::NSEC,
        RecordType::NSEC3,
        RecordType::NSEC3PARAM,
    ];
    // Types with no name in hickory: LOC, RP, AFSDB, SPF, URI, X25, MINFO,
    // EUI48, EUI64, KX, DHCID, CDS, CDNSKEY, SMIMEA, CSYNC, ZONEMD, private,
    // RT, MB, MG.
    let types: Vec<RecordType> = types
        .into_iter()
        .chain(
            [
                29u16, 17, 18, 99, 256, 19, 14, 108, 109, 36, 49, 59, 60, 53, 62, 63, 65280, 21, 7,
                8,
            ]
            .map(RecordType::from),
        )
        .collect();
    let mut differ = Vec::new();
    let mut asked = compare(nsd, s.addr, &names, &types, Opt::Plain, &mut differ);
    // Without EDNS (512-octet answers: more truncation and left-out glue).
    let types512 = [
        RecordType::A,
        RecordType::NS,
        RecordType::MX,
        RecordType::TXT,
        RecordType::ANY,
    ];
    asked += compare(nsd, s.addr, &names, &types512, Opt::None, &mut differ);
    // With DO set.
    let types_do = [
        RecordType::A,
        RecordType::MX,
        RecordType::DNSKEY,
        RecordType::RRSIG,
        RecordType::ANY,
    ];
    asked += compare(nsd, s.addr, &names, &types_do, Opt::Do, &mut differ);
    // Over IPv6, NSD gives the AAAA of NS targets before their A.
    let nsd6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let s6 = Popdns::start_with(&basic_config("").replace("127.0.0.1:0", "[::1]:0"), &files);
    let types6 = [
        RecordType::A,
        RecordType::NS,
        RecordType::MX,
        RecordType::SRV,
        RecordType::SOA,
    ];
    let asked6 = compare(nsd6, s6.addr, &names, &types6, Opt::Plain, &mut differ);
    assert!(asked6 > 500, "only {asked6} questions compared over IPv6");
    asked += asked6;
    eprintln!("{asked} questions compared with NSD");
    assert!(asked > 1000, "only {asked} questions compared");
    assert!(
        differ.is_empty(),
        "{} of {asked} answers differ from NSD's:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
