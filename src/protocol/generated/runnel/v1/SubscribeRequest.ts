// Original file: proto/runnel/v1/log.proto

import type { SubscribeStart as _runnel_v1_SubscribeStart, SubscribeStart__Output as _runnel_v1_SubscribeStart__Output } from '../../runnel/v1/SubscribeStart.js';

export interface SubscribeRequest {
  'start'?: (_runnel_v1_SubscribeStart | null);
  /**
   * More bytes of credit, typically the cost of the replies the client processed (see
   * SubscribeStart.credit_bytes for what a reply costs).
   */
  'creditBytes'?: (number);
  'kind'?: "start"|"creditBytes";
}

export interface SubscribeRequest__Output {
  'start'?: (_runnel_v1_SubscribeStart__Output | null);
  /**
   * More bytes of credit, typically the cost of the replies the client processed (see
   * SubscribeStart.credit_bytes for what a reply costs).
   */
  'creditBytes'?: (number);
  'kind'?: "start"|"creditBytes";
}
