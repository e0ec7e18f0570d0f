// What the Slack adapter is given by main.ts: its settings, the conversation service and the logger.
import type { Config } from '../../config.js';
import type { TurnService } from '../../conversation/service.js';
import type { Logger } from '../../log.js';

export interface SlackDeps {
  config: Config;
  service: TurnService;
  log: Logger;
}
