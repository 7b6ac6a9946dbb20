import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Error as _runnel_v1_Error, Error__Output as _runnel_v1_Error__Output } from './runnel/v1/Error.js';
import type { FetchRequest as _runnel_v1_FetchRequest, FetchRequest__Output as _runnel_v1_FetchRequest__Output } from './runnel/v1/FetchRequest.js';
import type { FetchResponse as _runnel_v1_FetchResponse, FetchResponse__Output as _runnel_v1_FetchResponse__Output } from './runnel/v1/FetchResponse.js';
import type { FetchedRecord as _runnel_v1_FetchedRecord, FetchedRecord__Output as _runnel_v1_FetchedRecord__Output } from './runnel/v1/FetchedRecord.js';
import type { Header as _runnel_v1_Header, Header__Output as _runnel_v1_Header__Output } from './runnel/v1/Header.js';
import type { InitProducerIdRequest as _runnel_v1_InitProducerIdRequest, InitProducerIdRequest__Output as _runnel_v1_InitProducerIdRequest__Output } from './runnel/v1/InitProducerIdRequest.js';
import type { InitProducerIdResponse as _runnel_v1_InitProducerIdResponse, InitProducerIdResponse__Output as _runnel_v1_InitProducerIdResponse__Output } from './runnel/v1/InitProducerIdResponse.js';
import type { ListOffsetsRequest as _runnel_v1_ListOffsetsRequest, ListOffsetsRequest__Output as _runnel_v1_ListOffsetsRequest__Output } from './runnel/v1/ListOffsetsRequest.js';
import type { ListOffsetsResponse as _runnel_v1_ListOffsetsResponse, ListOffsetsResponse__Output as _runnel_v1_ListOffsetsResponse__Output } from './runnel/v1/ListOffsetsResponse.js';
import type { LogServiceClient as _runnel_v1_LogServiceClient, LogServiceDefinition as _runnel_v1_LogServiceDefinition } from './runnel/v1/LogService.js';
import type { PartitionData as _runnel_v1_PartitionData, PartitionData__Output as _runnel_v1_PartitionData__Output } from './runnel/v1/PartitionData.js';
import type { PartitionOffset as _runnel_v1_PartitionOffset, PartitionOffset__Output as _runnel_v1_PartitionOffset__Output } from './runnel/v1/PartitionOffset.js';
import type { PartitionResult as _runnel_v1_PartitionResult, PartitionResult__Output as _runnel_v1_PartitionResult__Output } from './runnel/v1/PartitionResult.js';
import type { ProduceRequest as _runnel_v1_ProduceRequest, ProduceRequest__Output as _runnel_v1_ProduceRequest__Output } from './runnel/v1/ProduceRequest.js';
import type { ProduceResponse as _runnel_v1_ProduceResponse, ProduceResponse__Output as _runnel_v1_ProduceResponse__Output } from './runnel/v1/ProduceResponse.js';
import type { ProducerInfo as _runnel_v1_ProducerInfo, ProducerInfo__Output as _runnel_v1_ProducerInfo__Output } from './runnel/v1/ProducerInfo.js';
import type { Record as _runnel_v1_Record, Record__Output as _runnel_v1_Record__Output } from './runnel/v1/Record.js';
import type { Records as _runnel_v1_Records, Records__Output as _runnel_v1_Records__Output } from './runnel/v1/Records.js';
import type { SubscribeRequest as _runnel_v1_SubscribeRequest, SubscribeRequest__Output as _runnel_v1_SubscribeRequest__Output } from './runnel/v1/SubscribeRequest.js';
import type { SubscribeResponse as _runnel_v1_SubscribeResponse, SubscribeResponse__Output as _runnel_v1_SubscribeResponse__Output } from './runnel/v1/SubscribeResponse.js';
import type { SubscribeStart as _runnel_v1_SubscribeStart, SubscribeStart__Output as _runnel_v1_SubscribeStart__Output } from './runnel/v1/SubscribeStart.js';
import type { TopicData as _runnel_v1_TopicData, TopicData__Output as _runnel_v1_TopicData__Output } from './runnel/v1/TopicData.js';
import type { TopicResult as _runnel_v1_TopicResult, TopicResult__Output as _runnel_v1_TopicResult__Output } from './runnel/v1/TopicResult.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  runnel: {
    v1: {
      Acks: EnumTypeDefinition
      Error: MessageTypeDefinition<_runnel_v1_Error, _runnel_v1_Error__Output>
      FetchRequest: MessageTypeDefinition<_runnel_v1_FetchRequest, _runnel_v1_FetchRequest__Output>
      FetchResponse: MessageTypeDefinition<_runnel_v1_FetchResponse, _runnel_v1_FetchResponse__Output>
      FetchedRecord: MessageTypeDefinition<_runnel_v1_FetchedRecord, _runnel_v1_FetchedRecord__Output>
      Header: MessageTypeDefinition<_runnel_v1_Header, _runnel_v1_Header__Output>
      InitProducerIdRequest: MessageTypeDefinition<_runnel_v1_InitProducerIdRequest, _runnel_v1_InitProducerIdRequest__Output>
      InitProducerIdResponse: MessageTypeDefinition<_runnel_v1_InitProducerIdResponse, _runnel_v1_InitProducerIdResponse__Output>
      ListOffsetsRequest: MessageTypeDefinition<_runnel_v1_ListOffsetsRequest, _runnel_v1_ListOffsetsRequest__Output>
      ListOffsetsResponse: MessageTypeDefinition<_runnel_v1_ListOffsetsResponse, _runnel_v1_ListOffsetsResponse__Output>
      LogService: SubtypeConstructor<typeof grpc.Client, _runnel_v1_LogServiceClient> & { service: _runnel_v1_LogServiceDefinition }
      OffsetSpec: EnumTypeDefinition
      PartitionData: MessageTypeDefinition<_runnel_v1_PartitionData, _runnel_v1_PartitionData__Output>
      PartitionOffset: MessageTypeDefinition<_runnel_v1_PartitionOffset, _runnel_v1_PartitionOffset__Output>
      PartitionResult: MessageTypeDefinition<_runnel_v1_PartitionResult, _runnel_v1_PartitionResult__Output>
      ProduceRequest: MessageTypeDefinition<_runnel_v1_ProduceRequest, _runnel_v1_ProduceRequest__Output>
      ProduceResponse: MessageTypeDefinition<_runnel_v1_ProduceResponse, _runnel_v1_ProduceResponse__Output>
      ProducerInfo: MessageTypeDefinition<_runnel_v1_ProducerInfo, _runnel_v1_ProducerInfo__Output>
      Record: MessageTypeDefinition<_runnel_v1_Record, _runnel_v1_Record__Output>
      RecordFormat: EnumTypeDefinition
      Records: MessageTypeDefinition<_runnel_v1_Records, _runnel_v1_Records__Output>
      SubscribeRequest: MessageTypeDefinition<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeRequest__Output>
      SubscribeResponse: MessageTypeDefinition<_runnel_v1_SubscribeResponse, _runnel_v1_SubscribeResponse__Output>
      SubscribeStart: MessageTypeDefinition<_runnel_v1_SubscribeStart, _runnel_v1_SubscribeStart__Output>
      TopicData: MessageTypeDefinition<_runnel_v1_TopicData, _runnel_v1_TopicData__Output>
      TopicResult: MessageTypeDefinition<_runnel_v1_TopicResult, _runnel_v1_TopicResult__Output>
    }
  }
}

