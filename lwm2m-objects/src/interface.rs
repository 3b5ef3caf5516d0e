//! Object 1024, Interface (`objects.md` object 1024 and §6.5).
//!
//! This stage provides login/logout, the session resources, security options, the
//! inactivity period, frame sizes, keep-alive, multi-request (run by the core's
//! dispatcher), the configuration version and save command, NFC priority, and the plain
//! configuration values of [`SETTINGS`], the append resources of [`BLOBS`]
//! (certificates, the JVM code), streamed to the store, the board's facts
//! ([`InterfaceInfo`]: UID, host protocols, BLE address, data-log limit, hostname, product
//! key), the configuration format, and the local time. `PUT /1024//3` answers `A1` (the
//! host protocol is the link a request came on), and so does `POST /1024//5` (a UID is no
//! secret: it logs nobody in); so do the resources of a settings group the build leaves
//! out, once the access check passed.

use lwm2m_core::acl::Access::{self, Admin, Anyone, User};
use lwm2m_core::blob::BlobId;
use lwm2m_core::config::{Config, NfcPriority, SecurityOptions};
use lwm2m_core::object::{Context, Envelope, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::codec::{self, Widths};
use crate::settings::{self, EnumValues, Group, Kind, Setting, SettingDef};
use crate::unlisted::{self, Unprovided};

/// Object id.
pub const ID: u16 = 1024;

/// `/1024//10` value meaning "configuration in progress" (255.255.65535).
pub const CONFIGURING: u32 = 0xFFFF_FFFF;

/// Resources of object 1024, one line each, with the client's method names. Plain
/// configuration values are readable by any logged-in profile and written by the
/// administrator. Only the administrator reads a credential: the Wi-Fi key (16), the
/// cloud MQTT client id, user name and password (27-29), the relay's client id, user
/// name, password and net key (52-55), the relay topics, which carry the key derived from
/// the net key (58, 59; `mqtt.md` §2), and the LoRa ids (90).
const OTHER_RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(0).post(Anyone), // login, loginWithHash
    ResourceDef::single(1).post(Anyone), // logout
    ResourceDef::single(2).get(Anyone).answers(2), // getCurrentProfileId
    // The current host protocol is the link the request came on: a request cannot
    // switch the device to another one, so PUT is declared but not provided.
    ResourceDef::single(3)
        .get(Anyone)
        .answers(2)
        .put(Admin)
        .not_implemented_for(Method::Put), // getCurrentHostProtocol, putCurrentHostProtocol
    ResourceDef::single(4).get(Anyone).answers(4), // keepAlive
    // The UID is no secret (an NFC reader sees it): it logs nobody in.
    ResourceDef::single(5)
        .get(Admin)
        .answers(UID_LEN as u16)
        .post(Admin)
        .not_implemented_for(Method::Post), // getUID, loginWithUID
    ResourceDef::single(6).get(Anyone).answers(2).put(Admin), // getSecurityOptions, putSecurityOptions
    ResourceDef::single(7).get(Anyone).answers(2),            // getCurrentGroupId
    ResourceDef::single(10)
        .get(Anyone)
        .answers(4)
        .put(Admin)
        .post(Admin), // getConfigVersion, putConfigVersion, reloadConfig
    ResourceDef::single(18).get(Admin).answers(2),            // getConfigFormatFirmwareVersion
    ResourceDef::single(21).get(Admin).answers(2),            // getAvailableHostProtocols
    Group::Ble.gate(ResourceDef::single(22).get(Admin).answers(6)), // getAddress
    ResourceDef::single(23).get(Admin).answers(2),            // getMaxPacketCount
    ResourceDef::single(24)
        .get(User)
        .answers(1)
        .put(Admin)
        .post(Admin), // getNfcConnectionPriority, putNfcConnectionPriority, postNfcConnectionPriority
    ResourceDef::single(34).get(Anyone).answers(2).put(Admin), // getHostInactivityPeriod, putHostInactivityPeriod
    Group::Wifi.gate(
        ResourceDef::single(35)
            .get(Admin)
            .answers(HOSTNAME_LEN as u16),
    ), // getHostname
    Group::Certificates.gate(ResourceDef::single(37).put(Admin)), // putCertificatePublicKey
    Group::Certificates.gate(ResourceDef::single(38).put(Admin)), // putCertificatePrivateKey
    // The encrypted session (feature `crypto`): the SCRAM login, the tunnel (opened
    // before dispatch by `Device::unseal`: reaching an object, its frame did not open),
    // the IV exchange and the anonymous key.
    #[cfg(feature = "crypto")]
    ResourceDef::single(40).get(Anyone).answers(12), // login
    #[cfg(feature = "crypto")]
    ResourceDef::single(41).get(Anyone).answers(16), // loginProof
    #[cfg(feature = "crypto")]
    ResourceDef::single(44).get(Anyone).answers(0), // sendWithIV
    #[cfg(feature = "crypto")]
    ResourceDef::single(45).get(Anyone).answers(16), // setInitializationVector
    #[cfg(feature = "crypto")]
    ResourceDef::single(47).get(Anyone).answers(16), // initialize
    #[cfg(feature = "crypto")]
    ResourceDef::single(48).get(Anyone).answers(0), // send
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(40).get(Anyone).not_implemented(), // login
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(41).get(Anyone).not_implemented(), // loginProof
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(44).get(Anyone).not_implemented(), // sendWithIV
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(45).get(Anyone).not_implemented(), // setInitializationVector
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(47).get(Anyone).not_implemented(), // initialize
    #[cfg(not(feature = "crypto"))]
    ResourceDef::single(48).get(Anyone).not_implemented(), // send
    Group::Mqtt.gate(ResourceDef::single(57).put(Admin)), // putBrokerCertificate
    ResourceDef::single(60)
        .get(Admin)
        .answers(PRODUCT_KEY_LEN as u16), // getProductKey
    Group::Jvm.gate(ResourceDef::single(74).put(Admin).post(Admin)), // appendCode, clearCode
    Group::Time.gate(ResourceDef::single(79).get(Admin).answers(LOCAL_TIME_LEN)), // getLocalTime
    // Single packets (feature `packets`): anyone may load and execute one, the rights
    // are the packet's sender's (decision 7).
    #[cfg(feature = "packets")]
    ResourceDef::single(80).post(Anyone), // writeAndExecute, writeAndExecuteBytes
    #[cfg(feature = "packets")]
    ResourceDef::single(81).get(Anyone).answers(4), // getInfo
    #[cfg(feature = "packets")]
    ResourceDef::single(82).post(Anyone), // writeChunk
    #[cfg(feature = "packets")]
    ResourceDef::single(83).post(Anyone), // executeSinglePacketInStore
    #[cfg(not(feature = "packets"))]
    ResourceDef::single(80).post(Admin).not_implemented(), // writeAndExecute, writeAndExecuteBytes
    #[cfg(not(feature = "packets"))]
    ResourceDef::single(81).get(Admin).not_implemented(), // getInfo
    #[cfg(not(feature = "packets"))]
    ResourceDef::single(82).post(Admin).not_implemented(), // writeChunk
    #[cfg(not(feature = "packets"))]
    ResourceDef::single(83).post(Admin).not_implemented(), // executeSinglePacketInStore
    ResourceDef::single(88).get(Anyone).answers(4), // getCurrentHostProtocolMaxFrameSize
    ResourceDef::single(89)
        .get(Anyone)
        .envelope(Envelope::MultiRequest), // executeMultiRequestFrame
];

/// The append resources of object 1024, kept by the store as blobs
/// ([`lwm2m_core::blob`], never in the configuration image), each named by its resource
/// id: the client sends their data in [`blobs::CHUNK`]-byte pieces, one PUT each, which
/// the device appends; an empty PUT clears the blob (the client's way to clear the JVM
/// code, and the only way to replace a certificate), and so does `POST /1024//74`
/// (clearCode). Administrator only; a chunk the blob's region has no room for is `A7`
/// and changes nothing. A group the build leaves out answers `A1`.
pub const BLOBS: &[(BlobId, Group)] = &[
    (blobs::CERTIFICATE_PUBLIC_KEY, Group::Certificates),
    (blobs::CERTIFICATE_PRIVATE_KEY, Group::Certificates),
    (blobs::BROKER_CERTIFICATE, Group::Mqtt),
    (blobs::JVM_CODE, Group::Jvm),
];

/// The blobs of object 1024 and the sizes a port gives their regions
/// ([`lwm2m_core::blob::blob_region_len`]`(bytes, CHUNK)`).
pub mod blobs {
    use lwm2m_core::blob::BlobId;

    /// `/1024//37` putCertificatePublicKey: the TLS client certificate (PEM).
    pub const CERTIFICATE_PUBLIC_KEY: BlobId = BlobId(37);
    /// `/1024//38` putCertificatePrivateKey: its private key (PEM).
    pub const CERTIFICATE_PRIVATE_KEY: BlobId = BlobId(38);
    /// `/1024//57` putBrokerCertificate: the MQTT broker's CA certificate (PEM).
    pub const BROKER_CERTIFICATE: BlobId = BlobId(57);
    /// `/1024//74` appendCode: the JVM byte code.
    pub const JVM_CODE: BlobId = BlobId(74);
    /// The size of the client's chunks (`ServiceCallRunner` `chunkSize`).
    pub const CHUNK: usize = 220;
    /// The largest certificate or key a port should make room for: 4 KiB (a PEM chain
    /// of two RSA-2048 certificates).
    pub const CERTIFICATE_BYTES: usize = 4096;
    /// The largest JVM code a port should make room for: 32 KiB.
    pub const JVM_CODE_BYTES: usize = 32 * 1024;
}

/// Configuration values of object 1024 served from the table (see [`settings`]): the
/// encoding of `objects.md` object 1024, the enums of `enums.json`, and the schema's
/// maximum lengths where the client declares one.
pub const SETTINGS: &[SettingDef] = &[
    SettingDef::new(ResourceDef::single(42).get(Anyone).put(Admin), Kind::U32), // getHashIteration, putHashIteration (the SCRAM records' PBKDF2 iterations; the client writes a u16)
    SettingDef::new(ResourceDef::single(8).get(User).put(Admin), Kind::U16), // getConfigFormatVersion, putConfigFormatVersion
    SettingDef::new(ResourceDef::single(9).get(User).put(Admin), Kind::Ascii(32)), // getAppName, putAppName
    SettingDef::new(
        ResourceDef::single(11).get(User).put(Admin),
        Kind::Ascii(128),
    ), // getAppPath, putAppPath (getAppPath, putAppPath (schema: URL of 128))
    SettingDef::new(
        ResourceDef::single(13).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1, 2])),
    ), // getNfcPairingMode, putNfcPairingMode (NfcPairingMode: NO, MANDATORY, MANDATORY_FOR_LOGIN)
    SettingDef::new(
        ResourceDef::single(14).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 2, 3])),
    ), // getPowerOptimisationLevel, putPowerOptimisationLevel (LowPowerOptimizationLevel: NO, STANDBY, SHUTDOWN)
    SettingDef::new(
        ResourceDef::single(15).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1])),
    )
    .group(Group::Wifi), // getMode, putMode (WifiMode: PEER_TO_PEER, NETWORK)
    SettingDef::new(
        ResourceDef::single(16).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Wifi), // getKey, putKey
    SettingDef::new(
        ResourceDef::single(17).get(User).put(Admin),
        Kind::Flags16(HOST_PROTOCOLS),
    ), // getAuthorizedHostProtocol, putAuthorizedHostProtocol
    SettingDef::new(
        ResourceDef::single(19).get(User).put(Admin),
        Kind::Ascii(128),
    ), // getUniversalLink, putUniversalLink (getUniversalLink, putUniversalLink (schema max 128))
    SettingDef::new(
        ResourceDef::single(25).get(User).put(Admin),
        Kind::Ascii(32),
    )
    .group(Group::Wifi), // getSSID, putSSID
    SettingDef::new(
        ResourceDef::single(26).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1, 2, 3, 4])),
    )
    .group(Group::Cloud), // getPlatform, putPlatform (CloudPlatform: NO_PLATFORM, IOTIZE, IBM_BLUEMIX, AMAZON_AWS, CUSTOM)
    SettingDef::new(
        ResourceDef::single(27).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Cloud), // getMqttClientId, putMqttClientId
    SettingDef::new(
        ResourceDef::single(28).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Cloud), // getMqttUsername, putMqttUsername
    SettingDef::new(
        ResourceDef::single(29).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Cloud), // getMqttPassword, putMqttPassword
    SettingDef::new(ResourceDef::single(30).get(User).put(Admin), Kind::Fixed(4))
        .group(Group::Wifi), // getIp, putIp
    SettingDef::new(ResourceDef::single(31).get(User).put(Admin), Kind::Fixed(4))
        .group(Group::Wifi), // getGatewayIp, putGatewayIp
    SettingDef::new(ResourceDef::single(32).get(User).put(Admin), Kind::Fixed(4))
        .group(Group::Wifi), // getIpMask, putIpMask
    SettingDef::new(ResourceDef::single(33).get(User).put(Admin), Kind::U32).group(Group::Cloud), // getDataLogUploadPeriod, putDataLogUploadPeriod
    SettingDef::new(
        ResourceDef::single(36).get(User).put(Admin),
        Kind::Bytes(64),
    ), // getApplicationData, putApplicationData
    SettingDef::new(
        ResourceDef::single(43).get(User).put(Admin),
        Kind::ProfileId,
    ), // getNfcAutologProfileId, putNfcAutologProfileId
    SettingDef::new(
        ResourceDef::single(50).get(User).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getBrokerHostname, putBrokerHostname
    SettingDef::new(
        ResourceDef::single(51).get(User).put(Admin),
        Kind::Ascii(16),
    )
    .group(Group::Mqtt), // getBrokerPort, putBrokerPort
    SettingDef::new(
        ResourceDef::single(52).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getClientId, putClientId
    SettingDef::new(
        ResourceDef::single(53).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getUsername, putUsername
    SettingDef::new(
        ResourceDef::single(54).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getPassword, putPassword
    SettingDef::new(
        ResourceDef::single(55).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getRelayNetKey, putRelayNetKey
    SettingDef::new(
        ResourceDef::single(58).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getRequestTopic, getTopicPrefix, putRequestTopic, putTopicPrefix
    SettingDef::new(
        ResourceDef::single(59).get(Admin).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Mqtt), // getResponseTopic, putResponseTopic
    SettingDef::new(
        ResourceDef::single(61).get(User).put(Admin),
        Kind::Ascii(16),
    )
    .group(Group::Cloud), // getMqttBrokerPort, putMqttBrokerPort
    SettingDef::new(
        ResourceDef::single(66).get(User).put(Admin),
        Kind::ProfileId,
    )
    .group(Group::Jvm), // getProfileId, putProfileId (getProfileId, putProfileId (JVM))
    SettingDef::new(
        ResourceDef::single(68).get(User).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Cloud), // getDataLogPublishTopic, putDataLogPublishTopic
    SettingDef::new(
        ResourceDef::single(69).get(User).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Cloud), // getDataLogSubscribeTopic, putDataLogSubscribeTopic
    SettingDef::new(
        ResourceDef::single(77).get(User).put(Admin),
        Kind::Ascii(100),
    )
    .group(Group::Time), // getNtpServer, putNtpServer (getNtpServer, putNtpServer (schema max 100))
    SettingDef::new(
        ResourceDef::single(78).get(User).put(Admin),
        Kind::Ascii(64),
    )
    .group(Group::Time), // getTimeZone, putTimeZone (getTimeZone, putTimeZone (schema max 64))
    SettingDef::new(
        ResourceDef::single(75).get(Admin).post(Admin),
        Kind::Flags8(SERVICE_CODES),
    ), // getDisabledServices, postDisabledServices (ServiceCode: DATALOG, JVM; stored: neither service is in this release)
    SettingDef::new(
        ResourceDef::single(84).get(User).put(Admin),
        Kind::Ascii(32),
    ), // getProductCode, putProductCode (getProductCode, putProductCode (schema max 32))
    SettingDef::new(
        ResourceDef::single(90).get(Admin).put(Admin),
        Kind::Bytes(64),
    )
    .group(Group::Lora), // getIds, putIds
    SettingDef::new(
        ResourceDef::single(91).get(User).put(Admin),
        Kind::Flags8(LORA_CONFIG),
    )
    .group(Group::Lora), // getConfig, putConfig (getConfig, putConfig (LoraConfig))
    SettingDef::new(
        ResourceDef::single(95).get(User).put(Admin),
        Kind::U16Max(999),
    )
    .group(Group::Wifi), // getCountryCode, putCountryCode (getCountryCode, putCountryCode (ISO 3166 numeric))
    SettingDef::new(
        ResourceDef::single(96).get(User).put(Admin),
        Kind::MaskReadAsOne(WIFI_PROTOCOLS),
    )
    .group(Group::Wifi), // getProtocol, putProtocol (putProtocol writes a mask, getProtocol decodes one value)
    SettingDef::new(ResourceDef::single(97).get(User).put(Admin), Kind::U8).group(Group::Wifi), // getTxPower, putTxPower (getTxPower, putTxPower (int8))
    SettingDef::new(
        ResourceDef::single(98).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1, 2])),
    )
    .group(Group::Wifi), // getSSIDVisibility, putSSIDVisibility (WifiSSIDVisibility: VISIBLE, HIDDEN_FROM_SCAN, HIDDEN)
    SettingDef::new(
        ResourceDef::single(99).get(User).put(Admin),
        Kind::Enum(EnumValues::of(&[0, 1])),
    )
    .group(Group::Wifi), // getKeyVisibility, putKeyVisibility (WifiKeyVisibility: VISIBLE, HIDDEN)
    SettingDef::new(
        ResourceDef::single(100).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (SWD_DIRECT_ACCESS: owning bundle, 0 none)
    SettingDef::new(
        ResourceDef::single(101).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (SERIAL_ACCESS)
    SettingDef::new(
        ResourceDef::single(102).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (MODBUS_DIRECT_ACCESS)
    SettingDef::new(
        ResourceDef::single(103).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (TAPNPASS_CONTROL_ACCESS)
    SettingDef::new(
        ResourceDef::single(104).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (SP_CODEEXEC_ACCESS)
    SettingDef::new(
        ResourceDef::single(105).get(User).put(Admin).post(Admin),
        Kind::BundleId,
    ), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile (MQTT_IDS_ACCESS)
];

/// Every resource of the object: [`SETTINGS`] declare their own.
pub const RESOURCES: &[ResourceDef] =
    &settings::table::<{ OTHER_RESOURCES.len() + SETTINGS.len() }>(OTHER_RESOURCES, SETTINGS);

/// The entries of [`RESOURCES`] the dispatcher searches ([`Object::resources`]): those
/// this build provides a method of, and any that do not fit [`UNLISTED`].
pub const LISTED: &[ResourceDef] =
    &unlisted::listed::<{ RESOURCES.len() - unlisted::count(RESOURCES) }>(RESOURCES);

/// The other entries of [`RESOURCES`], two bytes each ([`Object::unlisted`]).
pub const UNLISTED: &[Unprovided] =
    &unlisted::unlisted::<{ unlisted::count(RESOURCES) }>(RESOURCES);

/// The run-time lines of the [`SETTINGS`] this build carries.
pub const SETTING_LINES: &[Setting] = &settings::lines::<{ settings::carried(SETTINGS) }>(SETTINGS);

/// `HostProtocol` bits (`enums.json`): NFC, BLUETOOTH, GSM, USB_RLINK, USB_CMISIS_DAP,
/// WIFI, BLE, UART, MQTT, WEBSOCKET.
const HOST_PROTOCOLS: u16 =
    0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0100 | 0x0200 | 0x0400;
/// `ServiceCode` bits (`enums.json`): DATALOG, JVM.
const SERVICE_CODES: u8 = 0x01 | 0x02;
/// `LoraConfig` bits (`objects.md` §3): classA, classB, classC, dataLoggingEnabled,
/// singlePacketEnabled.
const LORA_CONFIG: u8 = 0x80 | 0x40 | 0x20 | 0x10 | 0x08;
/// `WifiProtocol` bits (`enums.json`): B, G, N.
const WIFI_PROTOCOLS: u8 = 0x01 | 0x02 | 0x04;

/// The hash iterations of `/1024//42` (0 if never written): what the first step of a
/// SCRAM login tells the client, which derived the profile's record with what it read
/// there.
#[cfg(feature = "crypto")]
fn hash_iterations(config: &Config) -> u32 {
    match config.settings.get(ID, 42) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// A deleted profile is no longer the NFC auto-login nor the JVM profile: both fall back
/// to anonymous.
pub fn profile_deleted(config: &mut Config, id: u16) {
    settings::drop_references(config, ID, SETTING_LINES, Kind::ProfileId, id);
}

/// A deleted bundle no longer owns a special feature: the feature belongs to no bundle.
pub fn bundle_deleted(config: &mut Config, id: u16) {
    settings::drop_references(config, ID, SETTING_LINES, Kind::BundleId, id);
}

/// Longest UID (`/1024//5`).
pub const UID_LEN: usize = 16;
/// Longest network hostname (`/1024//35`).
pub const HOSTNAME_LEN: usize = 32;
/// Longest product key (`/1024//60`).
pub const PRODUCT_KEY_LEN: usize = 32;
/// `/1024//79`: nine big-endian u32s.
const LOCAL_TIME_LEN: u16 = 36;

/// What the board says about its interfaces: the read-only facts of object 1024, which
/// are the hardware's or the factory's, not the configuration's (the configuration is
/// what an interlocutor writes, and saves). The defaults ([`InterfaceInfo::EMPTY`]) are
/// values the client decodes: no UID, no host protocol, no BLE, no data log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// `/1024//5` getUID: the board's unique id, raw (a Tap's NFC tag UID).
    pub uid: heapless::Vec<u8, UID_LEN>,
    /// `/1024//21` getAvailableHostProtocols: the `HostProtocol` bits of the links the
    /// board has (NFC 0x0001, BLE 0x0040, UART 0x0100, MQTT 0x0200, WEBSOCKET
    /// 0x0400...).
    pub host_protocols: u16,
    /// `/1024//22` getAddress: the BLE radio's MAC address; `None` on a board without
    /// one, which answers `A1`.
    pub ble_address: Option<[u8; 6]>,
    /// `/1024//23` getMaxPacketCount: the data-log packets the board keeps at most (0:
    /// no data log).
    pub max_packet_count: u16,
    /// `/1024//35` getHostname: the network hostname.
    pub hostname: heapless::String<HOSTNAME_LEN>,
    /// `/1024//60` getProductKey: the product key given at manufacture.
    pub product_key: heapless::String<PRODUCT_KEY_LEN>,
}

impl InterfaceInfo {
    /// Nothing known (`const`).
    pub const EMPTY: InterfaceInfo = InterfaceInfo {
        uid: heapless::Vec::new(),
        host_protocols: 0,
        ble_address: None,
        max_packet_count: 0,
        hostname: heapless::String::new(),
        product_key: heapless::String::new(),
    };
}

impl Default for InterfaceInfo {
    fn default() -> Self {
        InterfaceInfo::EMPTY
    }
}

/// Object 1024.
#[derive(Debug, Default)]
pub struct InterfaceObject {
    info: InterfaceInfo,
}

impl InterfaceObject {
    /// Object 1024 of a board that says nothing of its interfaces
    /// ([`InterfaceInfo::EMPTY`]; a port fills them in with
    /// [`InterfaceObject::info_mut`]).
    pub const fn new() -> Self {
        InterfaceObject::with_info(InterfaceInfo::EMPTY)
    }

    /// Object 1024 of a board described by `info`.
    pub const fn with_info(info: InterfaceInfo) -> Self {
        InterfaceObject { info }
    }

    /// What the board says about its interfaces.
    pub fn info(&self) -> &InterfaceInfo {
        &self.info
    }

    /// The same, mutably (a UID or a hostname read at boot).
    pub fn info_mut(&mut self) -> &mut InterfaceInfo {
        &mut self.info
    }
}

#[cfg(feature = "time")]
/// The offset east of UTC, in seconds, of a POSIX time zone (`/1024//78`, such as
/// `CET-1CEST,M3.5.0,M10.5.0/3` or `<+0530>-5:30`): its standard time's, daylight
/// saving rules left out; 0 for UTC, an empty zone, or one that is not POSIX (an IANA
/// name such as `Europe/Paris`, which needs a database a device does not carry).
fn zone_offset(zone: &[u8]) -> i32 {
    // The name: `<...>` quoted, or at least three letters.
    let rest = match zone {
        [b'<', quoted @ ..] => match quoted.iter().position(|&b| b == b'>') {
            Some(end) => &quoted[end + 1..],
            None => return 0,
        },
        _ => {
            let letters = zone.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            if letters < 3 {
                return 0;
            }
            &zone[letters..]
        }
    };
    // POSIX offsets are west of UTC.
    let (sign, rest) = match rest {
        [b'-', rest @ ..] => (1, rest),
        [b'+', rest @ ..] => (-1, rest),
        _ => (-1, rest),
    };
    // hh[:mm[:ss]] up to the daylight saving part: at most two digits a field, hours up to
    // 24, minutes and seconds up to 59; anything else is no POSIX zone.
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b':'))
        .unwrap_or(rest.len());
    if end == 0 {
        return 0;
    }
    let mut seconds = 0i32;
    let mut limits = [(3600, 24), (60, 59), (1, 59)].into_iter();
    for field in rest[..end].split(|&b| b == b':') {
        let Some((unit, most)) = limits.next() else {
            return 0;
        };
        if field.is_empty() || field.len() > 2 {
            return 0;
        }
        let value = field
            .iter()
            .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
        if value > most {
            return 0;
        }
        seconds += value * unit;
    }
    sign * seconds
}

#[cfg(feature = "time")]
/// `GET /1024//79`: the device's wall clock as local time of the configured zone, C's
/// `struct tm` as nine big-endian u32s (seconds, minutes, hours, day of the month,
/// month 0–11, years since 1900, day of the week 0–6 from Sunday, day of the year
/// 0–365, daylight saving 0).
fn local_time(ctx: &Context<'_>, body: &mut Body<'_>) -> Result<(), ResultCode> {
    let zone = ctx.config().setting(ID, 78).unwrap_or(&[]);
    let t = lwm2m_core::CivilTime::of(ctx.unix_time(), zone_offset(zone));
    for field in [
        t.seconds,
        t.minutes,
        t.hours,
        t.day_of_month,
        t.month,
        t.year,
        t.day_of_week,
        t.day_of_year,
        0,
    ] {
        body.push_u32(field)?;
    }
    Ok(())
}

impl Object for InterfaceObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        LISTED
    }

    fn unlisted(&self, resource: u16, instance: u16, method: Method) -> Option<Access> {
        unlisted::access(UNLISTED, resource, instance, method)
    }

    /// Values of settings this build does not carry take no room.
    fn config_loaded(&mut self, config: &mut Config) {
        settings::forget_unserved(config, ID, SETTING_LINES);
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.method, req.path.resource) {
            (Method::Post, 0) => ctx.login(req.payload)?,
            (Method::Post, 1) => {
                codec::empty(req.payload)?;
                ctx.logout()?;
            }
            // Current profile: the one whose rights apply (a user's alias).
            (Method::Get, 2) => body.push_u16(ctx.subject().rights)?,
            (Method::Get, 3) => body.push_u16(ctx.channel().kind.host_protocol())?,
            // Keep-alive: any request refreshes the session; the answer is the idle
            // limit in seconds now in force (0: none).
            // (The limit is whole seconds of a u16: its milliseconds fit a u32, and a
            // 32-bit division is one instruction.)
            (Method::Get, 4) => {
                let ms = ctx.idle_limit().map_or(0, |d| d.as_millis());
                body.push_u32(u32::try_from(ms).map_or(u32::MAX, |ms| ms / 1000))?;
            }
            (Method::Get, 5) => body.push(&self.info.uid)?,
            // The configuration image's layout this firmware reads and writes.
            (Method::Get, 18) => body.push_u16(lwm2m_core::config::image::FORMAT)?,
            (Method::Get, 21) => body.push_u16(self.info.host_protocols)?,
            // A group the build leaves out answers A1 before the handler.
            #[cfg(feature = "ble")]
            (Method::Get, 22) => {
                body.push(&self.info.ble_address.ok_or(ResultCode::NotImplemented)?)?
            }
            (Method::Get, 23) => body.push_u16(self.info.max_packet_count)?,
            #[cfg(feature = "wifi")]
            (Method::Get, 35) => body.push(self.info.hostname.as_bytes())?,
            (Method::Get, 60) => body.push(self.info.product_key.as_bytes())?,
            #[cfg(feature = "time")]
            (Method::Get, 79) => local_time(ctx, body)?,
            (Method::Get, 6) => body.push_u16(ctx.config().security_options.0)?,
            (Method::Put, 6) => {
                // The configurator writes one byte (0x10) before configuring.
                let options = codec::u16_liberal(req.payload)?;
                if options & !SecurityOptions::ALL != 0 {
                    return Err(ResultCode::NotAcceptable);
                }
                ctx.config_mut().security_options = SecurityOptions(options);
            }
            // Current group: the logged-in profile itself.
            (Method::Get, 7) => body.push_u16(ctx.subject().user)?,
            (Method::Get, 34) => body.push_u16(ctx.config().inactivity_secs)?,
            #[cfg(feature = "crypto")]
            (Method::Get, 40) => {
                let iterations = hash_iterations(ctx.config());
                body.push(&ctx.scram_begin(req.payload, iterations)?)?
            }
            #[cfg(feature = "crypto")]
            (Method::Get, 41) => body.push(&ctx.scram_finish(req.payload)?.0)?,
            #[cfg(feature = "crypto")]
            (Method::Get, 45) => body.push(&ctx.exchange_iv(req.payload)?)?,
            #[cfg(feature = "crypto")]
            (Method::Get, 47) => {
                codec::empty(req.payload)?;
                body.push(&ctx.new_session_key()?.0)?
            }
            // Single packets: the store's state, a chunk, the stored packet executed with
            // the CRC of what was loaded, a packet executed directly; the commands of an
            // opened packet run once the handler returns (`Context::run_packet`).
            #[cfg(feature = "packets")]
            (Method::Get, 81) => body.push(&ctx.packet_store_info())?,
            #[cfg(feature = "packets")]
            (Method::Post, 82) => ctx.load_packet_chunk(req.payload)?,
            #[cfg(feature = "packets")]
            (Method::Post, 83) => {
                let crc = codec::uint(req.payload, Widths::WORD)?;
                let opened = ctx.execute_stored_packet(crc, body)?;
                // A firmware image marked bootable: the device restarts into it (§11.5).
                if opened.firmware {
                    ctx.request_effect(lwm2m_core::Effect::Reboot);
                }
                ctx.run_packet(opened);
            }
            #[cfg(feature = "packets")]
            (Method::Post, 80) => {
                let opened = ctx.execute_packet(req.payload, body)?;
                if opened.firmware {
                    ctx.request_effect(lwm2m_core::Effect::Reboot);
                }
                ctx.run_packet(opened);
            }
            // A tunnel frame that reached an object did not open (no encrypted session,
            // or not the owner's): refused like a damaged one.
            #[cfg(feature = "crypto")]
            (Method::Get, 44 | 48) => return Err(ResultCode::BadRequest),
            // Written as u8 by the client, u16 accepted too (decision 12).
            (Method::Put, 34) => {
                ctx.config_mut().inactivity_secs = codec::u16_liberal(req.payload)?
            }
            (Method::Get, 88) => {
                // The largest request, then the largest response, big-endian u16s.
                let limits = ctx.limits();
                body.push_u32(
                    u32::from(limits.max_request) << 16 | u32::from(limits.max_response),
                )?;
            }
            (Method::Get, 10) => body.push_u32(ctx.config().version)?,
            // 255.255.65535 marks "being configured"; the real version ends the
            // configurator's sequence and saves the image; POST applies (saves) as is.
            (Method::Put, 10) => {
                let version = codec::uint(req.payload, Widths::WORD)?;
                ctx.config_mut().version = version;
                if version != CONFIGURING {
                    ctx.save_config()?;
                }
            }
            (Method::Post, 10) => {
                codec::empty(req.payload)?;
                ctx.save_config()?;
            }
            (Method::Get, 24) => body.push_u8(ctx.nfc_priority() as u8)?,
            (Method::Put | Method::Post, 24) => {
                let byte = codec::uint(req.payload, Widths::BYTE)? as u8;
                let priority = NfcPriority::from_u8(byte).ok_or(ResultCode::NotAcceptable)?;
                if req.method == Method::Put {
                    ctx.config_mut().nfc_priority = priority;
                }
                // PUT is stored in the configuration, POST applies until reboot; both
                // take effect at once.
                ctx.override_nfc_priority(priority);
            }
            #[cfg(any(feature = "certificates", feature = "mqtt", feature = "jvm"))]
            (Method::Put | Method::Post, 37 | 38 | 57 | 74) => blob(ctx, req)?,
            _ => return settings::handle_in(SETTING_LINES, ctx, ID, req, body),
        }
        Ok(ResultCode::Ok)
    }
}

/// A request on a blob of [`BLOBS`] (the table says which methods and groups are
/// served): a PUT appends its payload, an empty PUT or a POST clears.
#[cfg(any(feature = "certificates", feature = "mqtt", feature = "jvm"))]
fn blob(ctx: &mut Context<'_>, req: &Request<'_>) -> Result<(), ResultCode> {
    let (blob, _) = BLOBS
        .iter()
        .find(|(blob, _)| blob.0 == req.path.resource)
        .ok_or(ResultCode::NotImplemented)?;
    if req.method == Method::Post {
        codec::empty(req.payload)?;
        return ctx.clear_blob(*blob);
    }
    if req.payload.is_empty() {
        return ctx.clear_blob(*blob);
    }
    ctx.append_blob(*blob, req.payload)
}

#[cfg(all(test, feature = "time"))]
mod tests {
    extern crate std;
    use super::zone_offset;
    use proptest::prelude::*;
    use std::string::String;

    #[test]
    fn posix_zones_give_their_standard_offset() {
        for (zone, offset) in [
            (&b"CET-1CEST,M3.5.0,M10.5.0/3"[..], 3600),
            (b"EST5EDT", -5 * 3600),
            (b"<+0530>-5:30", 5 * 3600 + 30 * 60),
            (b"NST+3:30:15", -(3 * 3600 + 30 * 60 + 15)),
            (b"UTC0", 0),
            (b"AAA24", -24 * 3600),
        ] {
            assert_eq!(
                zone_offset(zone),
                offset,
                "{}",
                String::from_utf8_lossy(zone)
            );
        }
    }

    #[test]
    fn what_is_not_a_posix_zone_is_utc() {
        for zone in [
            &b""[..],
            b"Europe/Paris",
            b"UTC100",
            b"UTC-25",
            b"UTC-1:60",
            b"UTC-1:00:60",
            b"UTC-1:00:00:00",
            b"UTC-1::00",
            b"A-1",
            b"5",
            b"<",
            b"<>",
            b"<+05",
            b"UTC+",
            "CÉT-1".as_bytes(),
        ] {
            assert_eq!(zone_offset(zone), 0, "{}", String::from_utf8_lossy(zone));
        }
    }

    proptest! {
        #[test]
        fn any_zone_is_within_a_day(zone in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert!(zone_offset(&zone).abs() <= 24 * 3600 + 59 * 60 + 59);
        }
    }
}
