/**
 * gRPC adapter of AdminService (proto/runnel/v1/admin.proto): topics, partitions, metadata.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Broker, TopicInfo } from '../../broker/index.js';
import { limits } from '../../config/limits.js';
import type { Logger } from '../../observability/index.js';
import { numberToInt64 } from '../../protocol/index.js';
import type { AdminServiceHandlers } from '../../protocol/generated/runnel/v1/AdminService.js';
import type { TopicDescription } from '../../protocol/generated/runnel/v1/TopicDescription.js';
import { requestOrThrow } from '../request-guard.js';
import { toServiceError } from '../status.js';
import { checkTopic, distinctWithin } from '../validate.js';

export interface AdminServiceDeps {
  broker: Broker;
  logger: Logger;
  /** host:port clients should use to reach this broker. */
  advertised: { host: string; port: number };
}

function describe(info: TopicInfo): TopicDescription {
  return {
    name: info.name,
    replicationFactor: info.replicationFactor,
    configs: info.configs,
    overrides: info.overrides,
    partitions: info.partitions.map((partition) => ({
      partition: partition.partition,
      leader: partition.leader,
      replicas: partition.replicas,
      isr: partition.isr,
      logStartOffset: numberToInt64(partition.logStartOffset),
      logEndOffset: numberToInt64(partition.logEndOffset),
      highWatermark: numberToInt64(partition.highWatermark),
      sizeBytes: numberToInt64(partition.sizeBytes),
      status: partition.status,
      offlineReason: partition.offlineReason,
    })),
  };
}

/** Runs `work` and answers the unary call with its result or its mapped error (a refused request's too). */
function answer<T>(call: { request: unknown }, callback: grpc.sendUnaryData<T>, logger: Logger, method: string, work: () => Promise<T> | T): void {
  Promise.resolve()
    .then(() => requestOrThrow(call.request))
    .then(work)
    .then(
      (value) => callback(null, value),
      (error: unknown) => callback(toServiceError(error, logger, method)),
    );
}

export function createAdminService(deps: AdminServiceDeps): AdminServiceHandlers {
  const { broker, logger } = deps;
  return {
    CreateTopic(call, callback) {
      const request = call.request;
      answer(call, callback, logger, 'CreateTopic', async () => ({
        topic: describe(
          await broker.createTopic({ name: checkTopic(request.name), partitions: request.partitions, replicationFactor: request.replicationFactor, configs: request.configs }),
        ),
      }));
    },
    DeleteTopic(call, callback) {
      answer(call, callback, logger, 'DeleteTopic', async () => {
        await broker.deleteTopic(checkTopic(call.request.name));
        return {};
      });
    },
    ListTopics(call, callback) {
      answer(call, callback, logger, 'ListTopics', () => ({ topics: broker.listTopics() }));
    },
    DescribeTopic(call, callback) {
      answer(call, callback, logger, 'DescribeTopic', async () => describe(await broker.describeTopic(checkTopic(call.request.name))));
    },
    AlterTopicConfigs(call, callback) {
      const request = call.request;
      answer(call, callback, logger, 'AlterTopicConfigs', async () =>
        describe(await broker.alterTopicConfigs(checkTopic(request.name), { set: request.set, remove: request.remove })),
      );
    },
    AddPartitions(call, callback) {
      answer(call, callback, logger, 'AddPartitions', async () => describe(await broker.addPartitions(checkTopic(call.request.name), call.request.partitionCount)));
    },
    GetMetadata(call, callback) {
      answer(call, callback, logger, 'GetMetadata', () => {
        const metadata = broker.metadata(distinctWithin(call.request.topics, limits.topicsPerMetadataRequestMax, 'topics in a metadata request').map(checkTopic));
        return {
          clusterId: broker.clusterId,
          controllerId: broker.brokerId,
          brokers: [{ id: broker.brokerId, host: deps.advertised.host, port: deps.advertised.port }],
          topics: metadata.topics.map((topic) => ({
            name: topic.name,
            partitions: topic.partitions.map((partition) => ({ partition, leader: broker.brokerId, leaderEpoch: 0 })),
          })),
        };
      });
    },
  };
}
