//! Object 1024, Interface (`objects.md` object 1024 and §6.5).
//!
//! This stage provides login/logout, the session resources, security options, the
//! inactivity period, frame sizes, keep-alive and multi-request (run by the core's
//! dispatcher). Every other resource the client knows is declared with its methods and
//! answers `A1` (not implemented) once the access check passed.

use lwm2m_core::acl::Access::{Admin, Anyone};
use lwm2m_core::config::SecurityOptions;
use lwm2m_core::object::{Context, HandlerResult, Object, ResourceDef};
use lwm2m_core::wire::{Body, Method, Request, ResultCode};

use crate::codec;

/// Object id.
pub const ID: u16 = 1024;

/// Resources of object 1024, one line each, with the client's method names.
pub const RESOURCES: &[ResourceDef] = &[
    ResourceDef::single(0).post(Anyone), // login, loginWithHash
    ResourceDef::single(1).post(Anyone), // logout
    ResourceDef::single(2).get(Anyone),  // getCurrentProfileId
    ResourceDef::single(3).get(Anyone).put(Admin), // getCurrentHostProtocol, putCurrentHostProtocol
    ResourceDef::single(4).get(Anyone),  // keepAlive
    ResourceDef::single(5)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getUID, loginWithUID
    ResourceDef::single(6).get(Anyone).put(Admin), // getSecurityOptions, putSecurityOptions
    ResourceDef::single(7).get(Anyone),  // getCurrentGroupId
    ResourceDef::single(8)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getConfigFormatVersion, putConfigFormatVersion
    ResourceDef::single(9)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getAppName, putAppName
    ResourceDef::single(10)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getConfigVersion, putConfigVersion, reloadConfig
    ResourceDef::single(11)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getAppPath, putAppPath
    ResourceDef::single(13)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getNfcPairingMode, putNfcPairingMode
    ResourceDef::single(14)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getPowerOptimisationLevel, putPowerOptimisationLevel
    ResourceDef::single(15)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getMode, putMode
    ResourceDef::single(16)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getKey, putKey
    ResourceDef::single(17)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getAuthorizedHostProtocol, putAuthorizedHostProtocol
    ResourceDef::single(18).get(Admin).not_implemented(), // getConfigFormatFirmwareVersion
    ResourceDef::single(19)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getUniversalLink, putUniversalLink
    ResourceDef::single(21).get(Admin).not_implemented(), // getAvailableHostProtocols
    ResourceDef::single(22).get(Admin).not_implemented(), // getAddress
    ResourceDef::single(23).get(Admin).not_implemented(), // getMaxPacketCount
    ResourceDef::single(24)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getNfcConnectionPriority, putNfcConnectionPriority, postNfcConnectionPriority
    ResourceDef::single(25)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getSSID, putSSID
    ResourceDef::single(26)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getPlatform, putPlatform
    ResourceDef::single(27)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getMqttClientId, putMqttClientId
    ResourceDef::single(28)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getMqttUsername, putMqttUsername
    ResourceDef::single(29)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getMqttPassword, putMqttPassword
    ResourceDef::single(30)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getIp, putIp
    ResourceDef::single(31)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getGatewayIp, putGatewayIp
    ResourceDef::single(32)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getIpMask, putIpMask
    ResourceDef::single(33)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getDataLogUploadPeriod, putDataLogUploadPeriod
    ResourceDef::single(34).get(Anyone).put(Admin), // getHostInactivityPeriod, putHostInactivityPeriod
    ResourceDef::single(35).get(Admin).not_implemented(), // getHostname
    ResourceDef::single(36)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getApplicationData, putApplicationData
    ResourceDef::single(37).put(Admin).not_implemented(), // putCertificatePublicKey
    ResourceDef::single(38).put(Admin).not_implemented(), // putCertificatePrivateKey
    ResourceDef::single(40).get(Anyone).not_implemented(), // login
    ResourceDef::single(41).get(Anyone).not_implemented(), // loginProof
    ResourceDef::single(42)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getHashIteration, putHashIteration
    ResourceDef::single(43)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getNfcAutologProfileId, putNfcAutologProfileId
    ResourceDef::single(44).get(Anyone).not_implemented(), // sendWithIV
    ResourceDef::single(45).get(Anyone).not_implemented(), // setInitializationVector
    ResourceDef::single(47).get(Anyone).not_implemented(), // initialize
    ResourceDef::single(48).get(Anyone).not_implemented(), // send
    ResourceDef::single(50)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getBrokerHostname, putBrokerHostname
    ResourceDef::single(51)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getBrokerPort, putBrokerPort
    ResourceDef::single(52)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getClientId, putClientId
    ResourceDef::single(53)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getUsername, putUsername
    ResourceDef::single(54)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getPassword, putPassword
    ResourceDef::single(55)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getRelayNetKey, putRelayNetKey
    ResourceDef::single(57).put(Admin).not_implemented(), // putBrokerCertificate
    ResourceDef::single(58)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getRequestTopic, getTopicPrefix, putRequestTopic, putTopicPrefix
    ResourceDef::single(59)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getResponseTopic, putResponseTopic
    ResourceDef::single(60).get(Admin).not_implemented(), // getProductKey
    ResourceDef::single(61)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getMqttBrokerPort, putMqttBrokerPort
    ResourceDef::single(66)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getProfileId, putProfileId
    ResourceDef::single(68)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getDataLogPublishTopic, putDataLogPublishTopic
    ResourceDef::single(69)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getDataLogSubscribeTopic, putDataLogSubscribeTopic
    ResourceDef::single(74)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // appendCode, clearCode
    ResourceDef::single(75)
        .get(Admin)
        .post(Admin)
        .not_implemented(), // getDisabledServices, postDisabledServices
    ResourceDef::single(77)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getNtpServer, putNtpServer
    ResourceDef::single(78)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getTimeZone, putTimeZone
    ResourceDef::single(79).get(Admin).not_implemented(), // getLocalTime
    ResourceDef::single(80).post(Admin).not_implemented(), // writeAndExecute, writeAndExecuteBytes
    ResourceDef::single(81).get(Admin).not_implemented(), // getInfo
    ResourceDef::single(82).post(Admin).not_implemented(), // writeChunk
    ResourceDef::single(83).post(Admin).not_implemented(), // executeSinglePacketInStore
    ResourceDef::single(84)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getProductCode, putProductCode
    ResourceDef::single(88).get(Anyone),            // getCurrentHostProtocolMaxFrameSize
    ResourceDef::single(89).get(Anyone),            // executeMultiRequestFrame
    ResourceDef::single(90)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getIds, putIds
    ResourceDef::single(91)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getConfig, putConfig
    ResourceDef::single(95)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getCountryCode, putCountryCode
    ResourceDef::single(96)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getProtocol, putProtocol
    ResourceDef::single(97)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getTxPower, putTxPower
    ResourceDef::single(98)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getSSIDVisibility, putSSIDVisibility
    ResourceDef::single(99)
        .get(Admin)
        .put(Admin)
        .not_implemented(), // getKeyVisibility, putKeyVisibility
    ResourceDef::single(100)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(101)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(102)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(103)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(104)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
    ResourceDef::single(105)
        .get(Admin)
        .put(Admin)
        .post(Admin)
        .not_implemented(), // getSpecialFeatureProfile, putSpecialFeatureProfile, setSpecialFeatureProfile
];

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
                ctx.logout();
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
            _ => return Err(ResultCode::NotImplemented),
        }
        Ok(ResultCode::Ok)
    }
}
