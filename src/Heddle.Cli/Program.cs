using Heddle.Cli;

GcBudget.Apply(args); // returns unless it started this process again with the runtime's young-generation budget set
// A crash says what it was, where, and what state the process was in, in the process's log.
CrashReport.Install(Console.Error);
return HeddleCli.Run(args, Console.Out, Console.Error);
