/**
 * Hard limits, defaults, and (with the broker) loading and validation of broker config.
 * Everything exported here is frozen; nothing here holds mutable state.
 */
export { limits } from './limits.js';
export { defaults } from './defaults.js';
export { validateTopicName, isValidTopicName } from './topic-name.js';
export { brokerConfigDefaults, brokerSettingNames, loadBrokerConfig, type BrokerConfig, type BrokerConfigSources } from './broker-config.js';
