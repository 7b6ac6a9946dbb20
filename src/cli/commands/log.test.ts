import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerLogCommands } from './log.js';

/** The full --help text of `runnel log <name>`, including the text added after the options. */
function helpOf(name: string): string {
  const program = new Command('runnel');
  registerLogCommands(program, () => undefined);
  const command = program.commands.find((c) => c.name() === 'log')?.commands.find((c) => c.name() === name);
  if (command === undefined) throw new Error(`no command log ${name}`);
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

describe('runnel log verify and repair --help', () => {
  it('verify shows an example and what each exit code means', () => {
    const help = helpOf('verify');
    expect(help).toMatch(/Example[\s\S]*runnel log verify \S+-0/);
    expect(help).toMatch(/Exit codes:[\s\S]*0 [\s\S]*1 /);
  });

  it('repair shows an example, its exit codes, that it refuses while a broker holds the data directory, and that lost offsets are handed out again', () => {
    const help = helpOf('repair');
    expect(help).toMatch(/Example[\s\S]*runnel log repair \S+-0 --yes/);
    expect(help).toMatch(/Exit codes:[\s\S]*0 [\s\S]*1 /);
    expect(help).toMatch(/broker\.lock/);
    expect(help).toMatch(/offsets? .*(again|reuse)/i);
  });
});
