//! Object 1024, Interface (`objects.md` object 1024 and §6.5).
//!
//! This stage provides login/logout, the session resources, security options, the
//! inactivity period, frame sizes, keep-alive, multi-request (run by the core's
//! dispatcher), the configuration version and save command, NFC priority, and the plain
//! configuration values of [`SETTINGS`]. Every other resource the client knows is
//! declared with its methods and answers `A1` (not implemented) once the access check
//! passed.

use lwm2m_core::acl::Access::{Admin, Anyone, User};
use lwm2m_core::config::{Config, NfcPriority, SecurityOptions};
use lwm2m_core::object::{default_bound, Context, Envelope, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::codec;
use crate::settings::{self, Kind, SettingDef};

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
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(0).post(Anyone), // login, loginWithHash
    ResourceDef::single(1).post(Anyone), // logout
    ResourceDef::single(2).get(Anyone).answers(2), // getCurrentProfileId
    ResourceDef::single(3).get(Anyone).answers(2).put(Admin), // getCurrentHostProtocol, putCurrentHostProtocol
    ResourceDef::single(4).get(Anyone).answers(4),            // keepAlive
    ResourceDef::single(5)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getUID, loginWithUID
    ResourceDef::single(6).get(Anyone).answers(2).put(Admin), // getSecurityOptions, putSecurityOptions
    ResourceDef::single(7).get(Anyone).answers(2),            // getCurrentGroupId
    ResourceDef::single(8).get(User).put(Admin), // getConfigFormatVersion, putConfigFormatVersion
    ResourceDef::single(9).get(User).put(Admin), // getAppName, putAppName
    ResourceDef::single(10)
        .get(Anyone)
        .answers(4)
        .put(Admin)
        .post(Admin), // getConfigVersion, putConfigVersion, reloadConfig
    ResourceDef::single(11).get(User).put(Admin), // getAppPath, putAppPath
    ResourceDef::single(13).get(User).put(Admin), // getNfcPairingMode, putNfcPairingMode
    ResourceDef::single(14).get(User).put(Admin), // getPowerOptimisationLevel, putPowerOptimisationLevel
    ResourceDef::single(15).get(User).put(Admin), // getMode, putMode
    ResourceDef::single(16).get(Admin).put(Admin), // getKey, putKey
    ResourceDef::single(17).get(User).put(Admin), // getAuthorizedHostProtocol, putAuthorizedHostProtocol
    ResourceDef::single(18).get(Admin).not_implemented(), // getConfigFormatFirmwareVersion
    ResourceDef::single(19).get(User).put(Admin), // getUniversalLink, putUniversalLink
    ResourceDef::single(21).get(Admin).not_implemented(), // getAvailableHostProtocols
    ResourceDef::single(22).get(Admin).not_implemented(), // getAddress
    ResourceDef::single(23).get(Admin).not_implemented(), // getMaxPacketCount
    ResourceDef::single(24)
        .get(User)
        .answers(1)
        .put(Admin)
        .post(Admin), // getNfcConnectionPriority, putNfcConnectionPriority, postNfcConnectionPriority
    ResourceDef::single(25).get(User).put(Admin), // getSSID, putSSID
    ResourceDef::single(26).get(User).put(Admin), // getPlatform, putPlatform
    ResourceDef::single(27).get(Admin).put(Admin), // getMqttClientId, putMqttClientId
    ResourceDef::single(28).get(Admin).put(Admin), // getMqttUsername, putMqttUsername
    ResourceDef::single(29).get(Admin).put(Admin), // getMqttPassword, putMqttPassword
    ResourceDef::single(30).get(User).put(Admin), // getIp, putIp
    ResourceDef::single(31).get(User).put(Admin), // getGatewayIp, putGatewayIp
    ResourceDef::single(32).get(User).put(Admin), // getIpMask, putIpMask
    ResourceDef::single(33).get(User).put(Admin), // getDataLogUploadPeriod, putDataLogUploadPeriod
    ResourceDef::single(34).get(Anyone).answers(2).put(Admin), // getHostInactivityPeriod, putHostInactivityPeriod
    ResourceDef::single(35).get(Admin).not_implemented(),      // getHostname
    ResourceDef::single(36).get(User).put(Admin), // getApplicationData, putApplicationData
    ResourceDef::single(37).put(Admin).not_implemented(), // putCertificatePublicKey
    ResourceDef::single(38).put(Admin).not_implemented(), // putCertificatePrivateKey
    ResourceDef::single(40).get(Anyone).not_implemented(), // login
    ResourceDef::single(41).get(Anyone).not_implemented(), // loginProof
    ResourceDef::single(42)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getHashIteration, putHashIteration
    ResourceDef::single(43).get(User).put(Admin), // getNfcAutologProfileId, putNfcAutologProfileId
    ResourceDef::single(44).get(Anyone).not_implemented(), // sendWithIV
    ResourceDef::single(45).get(Anyone).not_implemented(), // setInitializationVector
    ResourceDef::single(47).get(Anyone).not_implemented(), // initialize
    ResourceDef::single(48).get(Anyone).not_implemented(), // send
    ResourceDef::single(50).get(User).put(Admin), // getBrokerHostname, putBrokerHostname
    ResourceDef::single(51).get(User).put(Admin), // getBrokerPort, putBrokerPort
    ResourceDef::single(52).get(Admin).put(Admin), // getClientId, putClientId
    ResourceDef::single(53).get(Admin).put(Admin), // getUsername, putUsername
    ResourceDef::single(54).get(Admin).put(Admin), // getPassword, putPassword
    ResourceDef::single(55).get(Admin).put(Admin), // getRelayNetKey, putRelayNetKey
    ResourceDef::single(57).put(Admin).not_implemented(), // putBrokerCertificate
    ResourceDef::single(58).get(Admin).put(Admin), // getRequestTopic, getTopicPrefix, putRequestTopic, putTopicPrefix
    ResourceDef::single(59).get(Admin).put(Admin), // getResponseTopic, putResponseTopic
    ResourceDef::single(60).get(Admin).not_implemented(), // getProductKey
    ResourceDef::single(61).get(User).put(Admin),  // getMqttBrokerPort, putMqttBrokerPort
    ResourceDef::single(66).get(User).put(Admin),  // getProfileId, putProfileId
    ResourceDef::single(68).get(User).put(Admin),  // getDataLogPublishTopic, putDataLogPublishTopic
    ResourceDef::single(69).get(User).put(Admin), // getDataLogSubscribeTopic, putDataLogSubscribeTopic
    ResourceDef::single(74)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // appendCode, clearCode
    ResourceDef::single(75)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getDisabledServices, postDisabledServices
    ResourceDef::single(77).get(User).put(Admin), // getNtpServer, putNtpServer
    ResourceDef::single(78).get(User).put(Admin), // getTimeZone, putTimeZone
    ResourceDef::single(79).get(Admin).not_implemented(), // getLocalTime
    ResourceDef::single(80).post(Admin).not_implemented(), // writeAndExecute, writeAndExecuteBytes
    ResourceDef::single(81).get(Admin).not_implemented(), // getInfo
    ResourceDef::single(82).post(Admin).not_implemented(), // writeChunk
    ResourceDef::single(83).post(Admin).not_implemented(), // executeSinglePacketInStore
    ResourceDef::single(84).get(User).put(Admin), // getProductCode, putProductCode
    ResourceDef::single(88).get(Anyone).answers(4), // getCurrentHostProtocolMaxFrameSize
    ResourceDef::single(89)
        .get(Anyone)
        .envelope(Envelope::MultiRequest), // executeMultiRequestFrame
    ResourceDef::single(90).get(Admin).put(Admin), // getIds, putIds
    ResourceDef::single(91).get(User).put(Admin), // getConfig, putConfig
    ResourceDef::single(95).get(User).put(Admin), // getCountryCode, putCountryCode
    ResourceDef::single(96).get(User).put(Admin), // getProtocol, putProtocol
    ResourceDef::single(97).get(User).put(Admin), // getTxPower, putTxPower
    ResourceDef::single(98).get(User).put(Admin), // getSSIDVisibility, putSSIDVisibility
    ResourceDef::single(99).get(User).put(Admin), // getKeyVisibility, putKeyVisibility
    ResourceDef::single(100).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(101).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(102).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(103).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(104).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(105).get(User).put(Admin).post(Admin), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
];

/// Configuration values of object 1024 served from the table (see [`settings`]): the
/// encoding of `objects.md` object 1024, the enums of `enums.json`, and the schema's
/// maximum lengths where the client declares one.
pub const SETTINGS: &[SettingDef] = &[
    SettingDef::new(8, Kind::U16), // getConfigFormatVersion, putConfigFormatVersion
    SettingDef::new(9, Kind::Ascii(32)), // getAppName, putAppName
    SettingDef::new(11, Kind::Ascii(128)), // getAppPath, putAppPath (schema: URL of 128)
    SettingDef::new(13, Kind::Enum(&[0, 1, 2])), // NfcPairingMode: NO, MANDATORY, MANDATORY_FOR_LOGIN
    SettingDef::new(14, Kind::Enum(&[0, 2, 3])), // LowPowerOptimizationLevel: NO, STANDBY, SHUTDOWN
    SettingDef::new(15, Kind::Enum(&[0, 1])),    // WifiMode: PEER_TO_PEER, NETWORK
    SettingDef::new(16, Kind::Ascii(64)),        // getKey, putKey
    SettingDef::new(17, Kind::Flags16(HOST_PROTOCOLS)), // getAuthorizedHostProtocol, putAuthorizedHostProtocol
    SettingDef::new(19, Kind::Ascii(128)), // getUniversalLink, putUniversalLink (schema max 128)
    SettingDef::new(25, Kind::Ascii(32)),  // getSSID, putSSID
    SettingDef::new(26, Kind::Enum(&[0, 1, 2, 3, 4])), // CloudPlatform: NO_PLATFORM, IOTIZE, IBM_BLUEMIX, AMAZON_AWS, CUSTOM
    SettingDef::new(27, Kind::Ascii(64)),              // getMqttClientId, putMqttClientId
    SettingDef::new(28, Kind::Ascii(64)),              // getMqttUsername, putMqttUsername
    SettingDef::new(29, Kind::Ascii(64)),              // getMqttPassword, putMqttPassword
    SettingDef::new(30, Kind::Fixed(4)),               // getIp, putIp
    SettingDef::new(31, Kind::Fixed(4)),               // getGatewayIp, putGatewayIp
    SettingDef::new(32, Kind::Fixed(4)),               // getIpMask, putIpMask
    SettingDef::new(33, Kind::U32), // getDataLogUploadPeriod, putDataLogUploadPeriod
    SettingDef::new(36, Kind::Bytes(64)), // getApplicationData, putApplicationData
    SettingDef::new(43, Kind::ProfileId), // getNfcAutologProfileId, putNfcAutologProfileId
    SettingDef::new(50, Kind::Ascii(64)), // getBrokerHostname, putBrokerHostname
    SettingDef::new(51, Kind::Ascii(16)), // getBrokerPort, putBrokerPort
    SettingDef::new(52, Kind::Ascii(64)), // getClientId, putClientId
    SettingDef::new(53, Kind::Ascii(64)), // getUsername, putUsername
    SettingDef::new(54, Kind::Ascii(64)), // getPassword, putPassword
    SettingDef::new(55, Kind::Ascii(64)), // getRelayNetKey, putRelayNetKey
    SettingDef::new(58, Kind::Ascii(64)), // getRequestTopic, getTopicPrefix, putRequestTopic, putTopicPrefix
    SettingDef::new(59, Kind::Ascii(64)), // getResponseTopic, putResponseTopic
    SettingDef::new(61, Kind::Ascii(16)), // getMqttBrokerPort, putMqttBrokerPort
    SettingDef::new(66, Kind::ProfileId), // getProfileId, putProfileId (JVM)
    SettingDef::new(68, Kind::Ascii(64)), // getDataLogPublishTopic, putDataLogPublishTopic
    SettingDef::new(69, Kind::Ascii(64)), // getDataLogSubscribeTopic, putDataLogSubscribeTopic
    SettingDef::new(77, Kind::Ascii(100)), // getNtpServer, putNtpServer (schema max 100)
    SettingDef::new(78, Kind::Ascii(64)), // getTimeZone, putTimeZone (schema max 64)
    SettingDef::new(84, Kind::Ascii(32)), // getProductCode, putProductCode (schema max 32)
    SettingDef::new(90, Kind::Bytes(64)), // getIds, putIds
    SettingDef::new(91, Kind::Flags8(LORA_CONFIG)), // getConfig, putConfig (LoraConfig)
    SettingDef::new(95, Kind::U16Max(999)), // getCountryCode, putCountryCode (ISO 3166 numeric)
    SettingDef::new(96, Kind::MaskReadAsOne(WIFI_PROTOCOLS)), // putProtocol writes a mask, getProtocol decodes one value
    SettingDef::new(97, Kind::U8),                            // getTxPower, putTxPower (int8)
    SettingDef::new(98, Kind::Enum(&[0, 1, 2])), // WifiSSIDVisibility: VISIBLE, HIDDEN_FROM_SCAN, HIDDEN
    SettingDef::new(99, Kind::Enum(&[0, 1])),    // WifiKeyVisibility: VISIBLE, HIDDEN
    SettingDef::new(100, Kind::BundleId),        // SWD_DIRECT_ACCESS: owning bundle, 0 none
    SettingDef::new(101, Kind::BundleId),        // SERIAL_ACCESS
    SettingDef::new(102, Kind::BundleId),        // MODBUS_DIRECT_ACCESS
    SettingDef::new(103, Kind::BundleId),        // TAPNPASS_CONTROL_ACCESS
    SettingDef::new(104, Kind::BundleId),        // SP_CODEEXEC_ACCESS
    SettingDef::new(105, Kind::BundleId),        // MQTT_IDS_ACCESS
];

/// `HostProtocol` bits (`enums.json`): NFC, BLUETOOTH, GSM, USB_RLINK, USB_CMISIS_DAP,
/// WIFI, BLE, UART, MQTT, WEBSOCKET.
const HOST_PROTOCOLS: u16 =
    0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0100 | 0x0200 | 0x0400;
/// `LoraConfig` bits (`objects.md` §3): classA, classB, classC, dataLoggingEnabled,
/// singlePacketEnabled.
const LORA_CONFIG: u8 = 0x80 | 0x40 | 0x20 | 0x10 | 0x08;
/// `WifiProtocol` bits (`enums.json`): B, G, N.
const WIFI_PROTOCOLS: u8 = 0x01 | 0x02 | 0x04;

/// A deleted profile is no longer the NFC auto-login nor the JVM profile: both fall back
/// to anonymous.
pub fn profile_deleted(config: &mut Config, id: u16) {
    settings::drop_references(config, ID, SETTINGS, Kind::ProfileId, id);
}

/// A deleted bundle no longer owns a special feature: the feature belongs to no bundle.
pub fn bundle_deleted(config: &mut Config, id: u16) {
    settings::drop_references(config, ID, SETTINGS, Kind::BundleId, id);
}

/// Object 1024.
#[derive(Debug, Default)]
pub struct InterfaceObject;

impl InterfaceObject {
    /// Object 1024.
    pub const fn new() -> Self {
        InterfaceObject
    }
}

impl Object for InterfaceObject {
    fn id(&self) -> u16 {
        ID
    }

    fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }

    fn answer_bound(&self, _config: &Config, req: &Request<'_>) -> usize {
        settings::answer_bound(SETTINGS, req).unwrap_or_else(|| default_bound(RESOURCES, req))
    }

    fn handle(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        body: &mut Body<'_>,
    ) -> HandlerResult {
        match (req.path.resource, req.method) {
            (0, Method::Post) => ctx.login(req.payload)?,
            (1, Method::Post) => {
                codec::empty(req.payload)?;
                ctx.logout()?;
            }
            // Current profile: the one whose rights apply (a user's alias).
            (2, Method::Get) => body.push_u16(ctx.subject().rights)?,
            (3, Method::Get) => body.push_u16(ctx.channel().kind.host_protocol())?,
            // Keep-alive: any request refreshes the session; the answer is the idle
            // limit in seconds now in force (0: none).
            (4, Method::Get) => {
                let secs = ctx.idle_limit().map_or(0, |d| d.as_secs());
                body.push_u32(u32::try_from(secs).unwrap_or(u32::MAX))?;
            }
            (6, Method::Get) => body.push_u16(ctx.config().security_options.0)?,
            (6, Method::Put) => {
                // The configurator writes one byte (0x10) before configuring.
                let options = codec::u16_liberal(req.payload)?;
                if options & !SecurityOptions::ALL != 0 {
                    return Err(ResultCode::NotAcceptable);
                }
                ctx.config_mut().security_options = SecurityOptions(options);
            }
            // Current group: the logged-in profile itself.
            (7, Method::Get) => body.push_u16(ctx.subject().user)?,
            (34, Method::Get) => body.push_u16(ctx.config().inactivity_secs)?,
            // Written as u8 by the client, u16 accepted too (decision 12).
            (34, Method::Put) => {
                ctx.config_mut().inactivity_secs = codec::u16_liberal(req.payload)?
            }
            (88, Method::Get) => {
                let limits = ctx.limits();
                body.push_u16(limits.max_request)?;
                body.push_u16(limits.max_response)?;
            }
            (10, Method::Get) => body.push_u32(ctx.config().version)?,
            // 255.255.65535 marks "being configured"; the real version ends the
            // configurator's sequence and saves the image; POST applies (saves) as is.
            (10, Method::Put) => {
                let version = codec::uint(req.payload, &[4])?;
                ctx.config_mut().version = version;
                if version != CONFIGURING {
                    ctx.save_config()?;
                }
            }
            (10, Method::Post) => {
                codec::empty(req.payload)?;
                ctx.save_config()?;
            }
            (24, Method::Get) => body.push_u8(ctx.nfc_priority() as u8)?,
            (24, Method::Put) | (24, Method::Post) => {
                let byte = codec::uint(req.payload, &[1])? as u8;
                let priority = NfcPriority::from_u8(byte).ok_or(ResultCode::NotAcceptable)?;
                if req.method == Method::Put {
                    ctx.config_mut().nfc_priority = priority;
                }
                // PUT is stored in the configuration, POST applies until reboot; both
                // take effect at once.
                ctx.override_nfc_priority(priority);
            }
            _ => return settings::handle_in(SETTINGS, ctx, ID, req, body),
        }
        Ok(ResultCode::Ok)
    }
}
