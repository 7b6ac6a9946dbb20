// Original file: proto/runnel/v1/admin.proto

import type { BrokerInfo as _runnel_v1_BrokerInfo, BrokerInfo__Output as _runnel_v1_BrokerInfo__Output } from '../../runnel/v1/BrokerInfo.js';
import type { TopicMetadata as _runnel_v1_TopicMetadata, TopicMetadata__Output as _runnel_v1_TopicMetadata__Output } from '../../runnel/v1/TopicMetadata.js';

export interface Metadata {
  'clusterId'?: (string);
  'controllerId'?: (number);
  'brokers'?: (_runnel_v1_BrokerInfo)[];
  'topics'?: (_runnel_v1_TopicMetadata)[];
}

export interface Metadata__Output {
  'clusterId': (string);
  'controllerId': (number);
  'brokers': (_runnel_v1_BrokerInfo__Output)[];
  'topics': (_runnel_v1_TopicMetadata__Output)[];
}
