import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AddPartitionsRequest as _runnel_v1_AddPartitionsRequest, AddPartitionsRequest__Output as _runnel_v1_AddPartitionsRequest__Output } from './runnel/v1/AddPartitionsRequest.js';
import type { AdminServiceClient as _runnel_v1_AdminServiceClient, AdminServiceDefinition as _runnel_v1_AdminServiceDefinition } from './runnel/v1/AdminService.js';
import type { AlterTopicConfigsRequest as _runnel_v1_AlterTopicConfigsRequest, AlterTopicConfigsRequest__Output as _runnel_v1_AlterTopicConfigsRequest__Output } from './runnel/v1/AlterTopicConfigsRequest.js';
import type { BrokerInfo as _runnel_v1_BrokerInfo, BrokerInfo__Output as _runnel_v1_BrokerInfo__Output } from './runnel/v1/BrokerInfo.js';
import type { CreateTopicRequest as _runnel_v1_CreateTopicRequest, CreateTopicRequest__Output as _runnel_v1_CreateTopicRequest__Output } from './runnel/v1/CreateTopicRequest.js';
import type { CreateTopicResponse as _runnel_v1_CreateTopicResponse, CreateTopicResponse__Output as _runnel_v1_CreateTopicResponse__Output } from './runnel/v1/CreateTopicResponse.js';
import type { DeleteTopicRequest as _runnel_v1_DeleteTopicRequest, DeleteTopicRequest__Output as _runnel_v1_DeleteTopicRequest__Output } from './runnel/v1/DeleteTopicRequest.js';
import type { DeleteTopicResponse as _runnel_v1_DeleteTopicResponse, DeleteTopicResponse__Output as _runnel_v1_DeleteTopicResponse__Output } from './runnel/v1/DeleteTopicResponse.js';
import type { DescribeTopicRequest as _runnel_v1_DescribeTopicRequest, DescribeTopicRequest__Output as _runnel_v1_DescribeTopicRequest__Output } from './runnel/v1/DescribeTopicRequest.js';
import type { GetMetadataRequest as _runnel_v1_GetMetadataRequest, GetMetadataRequest__Output as _runnel_v1_GetMetadataRequest__Output } from './runnel/v1/GetMetadataRequest.js';
import type { ListTopicsRequest as _runnel_v1_ListTopicsRequest, ListTopicsRequest__Output as _runnel_v1_ListTopicsRequest__Output } from './runnel/v1/ListTopicsRequest.js';
import type { ListTopicsResponse as _runnel_v1_ListTopicsResponse, ListTopicsResponse__Output as _runnel_v1_ListTopicsResponse__Output } from './runnel/v1/ListTopicsResponse.js';
import type { Metadata as _runnel_v1_Metadata, Metadata__Output as _runnel_v1_Metadata__Output } from './runnel/v1/Metadata.js';
import type { PartitionDescription as _runnel_v1_PartitionDescription, PartitionDescription__Output as _runnel_v1_PartitionDescription__Output } from './runnel/v1/PartitionDescription.js';
import type { PartitionMetadata as _runnel_v1_PartitionMetadata, PartitionMetadata__Output as _runnel_v1_PartitionMetadata__Output } from './runnel/v1/PartitionMetadata.js';
import type { TopicDescription as _runnel_v1_TopicDescription, TopicDescription__Output as _runnel_v1_TopicDescription__Output } from './runnel/v1/TopicDescription.js';
import type { TopicMetadata as _runnel_v1_TopicMetadata, TopicMetadata__Output as _runnel_v1_TopicMetadata__Output } from './runnel/v1/TopicMetadata.js';
import type { TopicSummary as _runnel_v1_TopicSummary, TopicSummary__Output as _runnel_v1_TopicSummary__Output } from './runnel/v1/TopicSummary.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  runnel: {
    v1: {
      AddPartitionsRequest: MessageTypeDefinition<_runnel_v1_AddPartitionsRequest, _runnel_v1_AddPartitionsRequest__Output>
      AdminService: SubtypeConstructor<typeof grpc.Client, _runnel_v1_AdminServiceClient> & { service: _runnel_v1_AdminServiceDefinition }
      AlterTopicConfigsRequest: MessageTypeDefinition<_runnel_v1_AlterTopicConfigsRequest, _runnel_v1_AlterTopicConfigsRequest__Output>
      BrokerInfo: MessageTypeDefinition<_runnel_v1_BrokerInfo, _runnel_v1_BrokerInfo__Output>
      CreateTopicRequest: MessageTypeDefinition<_runnel_v1_CreateTopicRequest, _runnel_v1_CreateTopicRequest__Output>
      CreateTopicResponse: MessageTypeDefinition<_runnel_v1_CreateTopicResponse, _runnel_v1_CreateTopicResponse__Output>
      DeleteTopicRequest: MessageTypeDefinition<_runnel_v1_DeleteTopicRequest, _runnel_v1_DeleteTopicRequest__Output>
      DeleteTopicResponse: MessageTypeDefinition<_runnel_v1_DeleteTopicResponse, _runnel_v1_DeleteTopicResponse__Output>
      DescribeTopicRequest: MessageTypeDefinition<_runnel_v1_DescribeTopicRequest, _runnel_v1_DescribeTopicRequest__Output>
      GetMetadataRequest: MessageTypeDefinition<_runnel_v1_GetMetadataRequest, _runnel_v1_GetMetadataRequest__Output>
      ListTopicsRequest: MessageTypeDefinition<_runnel_v1_ListTopicsRequest, _runnel_v1_ListTopicsRequest__Output>
      ListTopicsResponse: MessageTypeDefinition<_runnel_v1_ListTopicsResponse, _runnel_v1_ListTopicsResponse__Output>
      Metadata: MessageTypeDefinition<_runnel_v1_Metadata, _runnel_v1_Metadata__Output>
      PartitionDescription: MessageTypeDefinition<_runnel_v1_PartitionDescription, _runnel_v1_PartitionDescription__Output>
      PartitionMetadata: MessageTypeDefinition<_runnel_v1_PartitionMetadata, _runnel_v1_PartitionMetadata__Output>
      TopicDescription: MessageTypeDefinition<_runnel_v1_TopicDescription, _runnel_v1_TopicDescription__Output>
      TopicMetadata: MessageTypeDefinition<_runnel_v1_TopicMetadata, _runnel_v1_TopicMetadata__Output>
      TopicSummary: MessageTypeDefinition<_runnel_v1_TopicSummary, _runnel_v1_TopicSummary__Output>
    }
  }
}

