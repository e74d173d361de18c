//! Test certificates: a fresh CA and a server certificate for `localhost` /
//! `127.0.0.1` signed by it, as PEM text for servers that read files.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct Certs {
    /// The CA that signed the server certificate (for `email.smtp.ca_file`).
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// The server key, DER (PKCS #8), for a rustls server.
    pub server_key_der: Vec<u8>,
    pub server_cert_der: Vec<u8>,
}

pub fn make() -> Certs {
    let ca_key = KeyPair::generate().expect("rcgen: CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("rcgen: CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "helpdesk test SMTP CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .expect("rcgen: CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("rcgen: server key");
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("rcgen: server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server_params.use_authority_key_identifier_extension = true;
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("rcgen: server certificate");
    Certs {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        server_key_der: server_key.serialize_der(),
        server_cert_der: server_cert.der().to_vec(),
    }
}
