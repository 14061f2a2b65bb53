using Heddle.Cli;

GcBudget.Apply(args); // returns unless it started this process again with the runtime's young-generation budget set
// A crash says what it was and where in the process's log: the runtime alone prints only "Out of memory." for an
// OutOfMemoryException (a balancer under the scale benchmark ended so, with no stack to find it by).
AppDomain.CurrentDomain.UnhandledException += (_, e) => Console.Error.WriteLine($"heddle: unhandled exception, the process ends: {e.ExceptionObject}");
return HeddleCli.Run(args, Console.Out, Console.Error);
